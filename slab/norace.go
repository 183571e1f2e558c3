//go:build !race

package slab

import "unsafe"

func raceAcquire(unsafe.Pointer)      {}
func raceReleaseMerge(unsafe.Pointer) {}

// Per-P statistics are written only by a goroutine pinned to that P and
// read without synchronisation: a reader may see a slightly stale count.
func statAdd(p *uint64, v uint64) { *p += v }
func statLoad(p *uint64) uint64   { return *p }
