//go:build !amd64 || race || purego

package slab

// asmExpected: the pinned Go paths are the whole of Alloc and Free here.
const asmExpected = false
