//go:build amd64 && !race && !purego

package slab

// asmExpected: an amd64 build without the race detector or the purego tag
// must have the assembly fast paths; TestProcID fails if a Go release
// outside fast_amd64's build tag turned them off.
const asmExpected = true
