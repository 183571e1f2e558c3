// Package percpu gives hotslab the two primitives the kernel calls
// preempt_disable/smp_processor_id and this_cpu_ptr: pinning the running
// goroutine to its P (so it cannot be preempted or migrated) and the id of
// that P, used to index per-P slots.
//
// Pinning is the runtime's own procPin/procUnpin, reached with
// //go:linkname exactly as sync.Pool does. While pinned a goroutine must not
// block, allocate, take a lock or call anything that may do so: the P cannot
// be taken from it, so the garbage collector and stop-the-world wait for it.
// Keep pinned sections to a handful of instructions.
//
// Invariants: Pin and Unpin nest and must be balanced on the same
// goroutine; only the outermost Unpin ends the pinned section. The id
// returned by Pin is in [0, GOMAXPROCS) at the time of the call and stays
// the goroutine's P until that Unpin, so while pinned the goroutine is the
// only one using that id. GOMAXPROCS can change, so a per-P array (make it
// MaxProcs long) must tolerate ids at or beyond its length, for instance
// with a shared atomic fallback as lockdep.PerPRWSem does; the package has
// no per-P container of its own.
//
// Stop-the-world is a grace period: it cannot complete while any goroutine
// is pinned, so after Synchronize returns every pinned section that started
// before the call has finished (the kernel's synchronize_rcu for
// preempt-disabled readers).
//
// The race detector sees neither that two pinned sections on one P never
// overlap nor the grace period: under -race, per-P data is accessed
// atomically or annotated with runtime.RaceAcquire/RaceReleaseMerge.
package percpu

import (
	"runtime"
	_ "unsafe" // for go:linkname
)

//go:linkname runtimeProcPin runtime.procPin
func runtimeProcPin() int

//go:linkname runtimeProcUnpin runtime.procUnpin
func runtimeProcUnpin()

// Pin disables preemption of the calling goroutine and returns the id of
// the P it runs on. Kernel: preempt_disable(); smp_processor_id().
func Pin() int { return runtimeProcPin() }

// Unpin re-enables preemption. Kernel: preempt_enable().
func Unpin() { runtimeProcUnpin() }

// MaxProcs is the number of per-P slots a new per-P structure should have:
// the larger of GOMAXPROCS and the number of CPUs, so that raising
// GOMAXPROCS up to the CPU count keeps every P on its own slot.
func MaxProcs() int {
	n := runtime.GOMAXPROCS(0)
	if c := runtime.NumCPU(); c > n {
		n = c
	}
	return n
}

// Synchronize waits until every goroutine that was pinned when it was
// called has unpinned. It stops the world once (tens of microseconds), so
// it is for rare, slow paths only: a writer of a per-P read-write
// semaphore, a memory-hotplug operation. It must not be called while
// pinned (the runtime throws). Kernel: synchronize_rcu() for
// preempt-disabled readers.
func Synchronize() {
	// ReadMemStats stops the world and starts it again. (runtime.Stack(nil,
	// true) stops it too, a little more cheaply; it was tried while
	// torture was finding objects handed out twice, whose cause turned
	// out to be elsewhere (AllocBulk), and has not been retried since:
	// swap it in only with torture runs.)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
}

// CacheLine is the size hotslab pads per-P slots to, so that two Ps never
// write the same cache line.
const CacheLine = 64
