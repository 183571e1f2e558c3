// The per-P part of a cache (pcpuSheaves), its layout, and pin/unpin.

package slab

import "unsafe"

// pcpuSheaves is one P's part of a cache (the kernel's slub_percpu_sheaves).
// Touched only by a goroutine pinned to that P that saw flushing == 0, or
// by a flusher.
type pcpuSheaves struct {
	// n and objs are the main sheaf's count and array, kept here while
	// main is the P's (main.n is stale then; setMain/takeMain move the
	// count in and out), so the fast paths reach the array without
	// loading main first: pc → n → slot, not pc → main → n → slot.
	// Zero and nil when main is nil.
	n           int
	objs        []uintptr
	main, spare *sheaf
	// remote collects frees of other nodes' objects (of node
	// remote.node), sent home a sheaf at a time (replaceRemote).
	remote *sheaf
	stat   [NumStats]uint64
	// Padded to 1<<pcpuShift bytes: whole cache lines, so Ps never share
	// one, and a power of two, so &k.pcpu[pid] is a shift and an add
	// (fast_amd64.s). A negative length here means more statistics
	// than fit: raise pcpuShift.
	_ [1<<pcpuShift - (56 + NumStats*8)]byte
}

// pcpuShift is log2 of the size of a pcpuSheaves.
const pcpuShift = 8

// fast_amd64.s finds a P's pcpuSheaves by shifting by pcpuShift: the
// size must be exactly 1<<pcpuShift. Either array length is negative, a
// compile error, if it is not (the padding above counts 56 bytes of
// fields by hand).
//
// Its push sequence also takes a pcpuSheaves's main count and array and a
// sheaf's count and array alike: their offsets must be equal.
var (
	_ [unsafe.Sizeof(pcpuSheaves{}) - 1<<pcpuShift]struct{}
	_ [1<<pcpuShift - unsafe.Sizeof(pcpuSheaves{})]struct{}
	_ [unsafe.Offsetof(pcpuSheaves{}.n) - unsafe.Offsetof(sheaf{}.n)]struct{}
	_ [unsafe.Offsetof(sheaf{}.n) - unsafe.Offsetof(pcpuSheaves{}.n)]struct{}
	_ [unsafe.Offsetof(pcpuSheaves{}.objs) - unsafe.Offsetof(sheaf{}.objs)]struct{}
	_ [unsafe.Offsetof(sheaf{}.objs) - unsafe.Offsetof(pcpuSheaves{}.objs)]struct{}
)

// setMain makes sh (nil for none) the P's main sheaf, its count moving
// into pc.n. The caller owns the P's sheaves (pinned, or a flusher).
func (pc *pcpuSheaves) setMain(sh *sheaf) {
	pc.main = sh
	if sh == nil {
		pc.n, pc.objs = 0, nil
		return
	}
	pc.n, pc.objs = sh.n, sh.objs
}

// takeMain detaches and returns the P's main sheaf (nil if none), its
// count written back.
func (pc *pcpuSheaves) takeMain() *sheaf {
	m := pc.main
	if m != nil {
		m.n = pc.n
	}
	pc.setMain(nil)
	return m
}
