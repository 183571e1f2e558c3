// The per-P part of a cache (pcpuSheaves), its layout, and the pinned
// section every per-P access runs in (pin/unpin, pinUnflushed).

package slab

import (
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

// pcpuSheaves is one P's part of a cache (the kernel's
// slub_percpu_sheaves), padded to 1<<pcpuShift bytes. Touched only by a
// goroutine pinned to that P that saw flushing == 0 (pin), or by a flusher.
type pcpuSheaves struct {
	pcpuFields
	// Whole cache lines, so Ps never share one, and a power of two, so
	// &k.pcpu[pid] is a shift and an add (fast_amd64.s). A negative
	// length here means the fields outgrew it: raise pcpuShift.
	_ [1<<pcpuShift - unsafe.Sizeof(pcpuFields{})]byte
}

// pcpuFields are the fields of a pcpuSheaves.
type pcpuFields struct {
	// n and objs are the main sheaf's count and array, kept here while
	// main is the P's (main.n is stale then; setMain/takeMain move the
	// count in and out), so the fast paths reach the array without
	// loading main first: pc → n → slot, not pc → main → n → slot.
	// Zero and nil when main is nil.
	n    int
	objs []uintptr
	// main and spare hold objects of the P's node (procNode) only.
	main, spare *objSheaf
	// remote collects frees of another node's objects (of node
	// remote.node), sent home a sheaf at a time (replaceRemote).
	remote *objSheaf
	// node is the P's node (procNode[p]) for the assembly free, written
	// with it: at creation and by resetProcNodes, under a flush.
	node int
	stat [NumStats]uint64
}

// pcpuShift is log2 of the size of a pcpuSheaves.
const pcpuShift = 8

// Layouts fast_amd64.s relies on, checked at compile time (an array of
// negative length does not compile):
//   - a pcpuSheaves is exactly 1<<pcpuShift bytes (it finds a P's by a
//     shift);
//   - its push sequence takes a pcpuSheaves's main count and array and a
//     sheaf's count and array alike: their offsets are equal.
var (
	_ [unsafe.Sizeof(pcpuSheaves{}) - 1<<pcpuShift]struct{}
	_ [1<<pcpuShift - unsafe.Sizeof(pcpuSheaves{})]struct{}
	_ [unsafe.Offsetof(pcpuFields{}.n) - unsafe.Offsetof(sheafFields{}.n)]struct{}
	_ [unsafe.Offsetof(sheafFields{}.n) - unsafe.Offsetof(pcpuFields{}.n)]struct{}
	_ [unsafe.Offsetof(pcpuFields{}.objs) - unsafe.Offsetof(sheafFields{}.objs)]struct{}
	_ [unsafe.Offsetof(sheafFields{}.objs) - unsafe.Offsetof(pcpuFields{}.objs)]struct{}
)

// setMain makes sh (nil for none) the P's main sheaf, its count moving
// into pc.n. The caller owns the P's sheaves (pinned, or a flusher).
func (pc *pcpuSheaves) setMain(sh *objSheaf) {
	pc.main = sh
	if sh == nil {
		pc.n, pc.objs = 0, nil
		return
	}
	pc.n, pc.objs = sh.n, sh.objs
}

// takeMain detaches and returns the P's main sheaf (nil if none), its
// count written back.
func (pc *pcpuSheaves) takeMain() *objSheaf {
	m := pc.main
	if m != nil {
		m.n = pc.n
	}
	pc.setMain(nil)
	return m
}

// pin pins the goroutine to its P and returns the P's part of k, or nil
// when the P may not touch its sheaves now: a flush is in progress, or
// the P is beyond the per-P arrays (GOMAXPROCS was raised). Either way
// the caller ends the section with unpin(pc) and must not block, lock or
// allocate in between. The sync.Pool pin() of hotslab; kernel:
// local_lock(&s->cpu_sheaves->lock).
func (k *kmemCache) pin() (pc *pcpuSheaves, pid int) {
	pid = percpu.Pin()
	if k.flushing.Load() != 0 || uint(pid) >= uint(len(k.pcpu)) {
		return nil, pid
	}
	pc = &k.pcpu[pid]
	raceAcquire(unsafe.Pointer(pc))
	return pc, pid
}

// pinAt is pin that also fails (pc nil) if a flush began since gen, so
// a sheaf carried unpinned across a flush is not put back on a P.
func (k *kmemCache) pinAt(gen uint64) (pc *pcpuSheaves, pid int) {
	pc, pid = k.pin()
	if pc != nil && k.flushGen.Load() != gen {
		raceReleaseMerge(unsafe.Pointer(pc))
		pc = nil
	}
	return pc, pid
}

// unpin ends a section begun by pin, pinAt or pinUnflushed.
func unpin(pc *pcpuSheaves) {
	if pc != nil {
		raceReleaseMerge(unsafe.Pointer(pc))
	}
	percpu.Unpin()
}

// pinUnflushed is pin that waits out a flush in progress instead of
// failing; pc is nil only for a P beyond the per-P arrays. gen is the
// flush generation read before pinning, for a later pinAt.
func (k *kmemCache) pinUnflushed() (pc *pcpuSheaves, pid int, gen uint64) {
	a := k.a
	for {
		gen = k.flushGen.Load()
		pid = percpu.Pin()
		if k.flushing.Load() == 0 {
			if uint(pid) < uint(len(k.pcpu)) {
				pc = &k.pcpu[pid]
				raceAcquire(unsafe.Pointer(pc))
			}
			return pc, pid, gen
		}
		percpu.Unpin()
		a.waitFlush()
	}
}

// nodeOfP returns the node whose objects P pid caches (for a P beyond
// the per-P arrays, that of the P sharing its slot modulo their length).
// Kernel: numa_mem_id().
func (k *kmemCache) nodeOfP(pid int) int {
	return int(k.procNode[uint(pid)%uint(len(k.procNode))].Load())
}

// callerNode returns the node of the calling goroutine's P's objects.
func (k *kmemCache) callerNode() int {
	pid := percpu.Pin()
	node := k.nodeOfP(pid)
	percpu.Unpin()
	return node
}

// setFastProcs sets fastProcs and allocProcs (0 for an accounted cache).
func (k *kmemCache) setFastProcs(n int) {
	k.fastProcs = n
	k.freeProcs = n
	if k.initFree {
		k.freeProcs = 0 // every free zeroes its object
	}
	if k.debug != 0 {
		k.freeProcs = 0
	}
	switch {
	case k.debug != 0:
		k.allocProcs, k.groupProcs = 0, 0 // debug caches leave the per-P layers
	case k.initAlloc, k.a.failslab != nil && k.a.failslab.Active():
		k.allocProcs, k.groupProcs = 0, 0 // every allocation zeroes or asks failslab
	case k.acct:
		k.allocProcs, k.groupProcs = 0, n
	default:
		k.allocProcs, k.groupProcs = n, 0
	}
}

// procsForAsm is the fastProcs of a cache no flusher owns: len(pcpu), or
// 0 when the assembly fast paths are off or the allocator is closed.
func (k *kmemCache) procsForAsm() int {
	if !fastPath || k.a.closed.Load() {
		return 0
	}
	return len(k.pcpu)
}
