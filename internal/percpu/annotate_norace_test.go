//go:build !race

package percpu

import "unsafe"

func raceAcquire(unsafe.Pointer)      {}
func raceReleaseMerge(unsafe.Pointer) {}
