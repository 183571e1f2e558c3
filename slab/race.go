//go:build race

package slab

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Under the race detector the per-P protocol (pinned owner, flusher after a
// stop-the-world grace period) is made visible with explicit
// happens-before annotations, and statistics use atomics.

func raceAcquire(p unsafe.Pointer)      { runtime.RaceAcquire(p) }
func raceReleaseMerge(p unsafe.Pointer) { runtime.RaceReleaseMerge(p) }

func statAdd(p *uint64, v uint64) { atomic.AddUint64(p, v) }
func statLoad(p *uint64) uint64   { return atomic.LoadUint64(p) }
