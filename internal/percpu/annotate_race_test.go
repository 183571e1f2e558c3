//go:build race

package percpu

import (
	"runtime"
	"unsafe"
)

// Under the race detector a pinned goroutine's ownership of its P's slot is
// made visible with happens-before annotations, as slab does: the detector
// cannot see that two pinned sections on one P never overlap.

func raceAcquire(p unsafe.Pointer)      { runtime.RaceAcquire(p) }
func raceReleaseMerge(p unsafe.Pointer) { runtime.RaceReleaseMerge(p) }
