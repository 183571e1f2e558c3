//go:build race

package memcg

import (
	"runtime"
	"unsafe"
)

// Under the race detector a pinned goroutine's ownership of its P's stock
// is made visible with happens-before annotations: the detector sees
// neither that two pinned sections on one P never overlap nor Drain's
// grace period.

func raceAcquire(p unsafe.Pointer)      { runtime.RaceAcquire(p) }
func raceReleaseMerge(p unsafe.Pointer) { runtime.RaceReleaseMerge(p) }
