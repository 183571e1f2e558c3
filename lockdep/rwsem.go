package lockdep

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

// PerPRWSem is a per-P read-write semaphore, the kernel's
// percpu_rw_semaphore: readers are nearly free, writers are expensive.
//
// A reader pins itself to its P, checks that no writer is around and
// increments its P's counter: no shared cache line is written and no
// atomic instruction executed. A writer sets block, waits for a grace
// period (percpu.Synchronize: every reader that missed block has finished
// its pinned section), then waits until the sum of the per-P counters is
// zero. New readers that see block wait for the writer.
//
// Readers are NOT recursive: once a writer waits, a new read blocks even in
// a goroutine that already reads, which deadlocks. Lockdep models readers
// as non-recursive (Read) and reports such nesting.
//
// Lock order inside: wmu (writers) -> mu (slow readers, writer wait).
// Both are internal and held only inside these methods.
type PerPRWSem struct {
	class  *Class
	block  atomic.Int32
	slots  []prwSlot
	shared atomic.Int64 // readers on a P beyond len(slots)
	wmu    sync.Mutex
	mu     sync.Mutex
	cond   sync.Cond
}

// prwSlot is one P's reader count, alone on its cache line.
type prwSlot struct {
	n int64
	_ [percpu.CacheLine - unsafe.Sizeof(int64(0))%percpu.CacheLine]byte
}

// A prwSlot fills whole cache lines (a non-zero remainder makes this
// array length negative, a compile error).
var _ [-(unsafe.Sizeof(prwSlot{}) % percpu.CacheLine)]struct{}

// NewPerPRWSem returns a per-P read-write semaphore of class c.
func NewPerPRWSem(c *Class) *PerPRWSem {
	s := &PerPRWSem{}
	s.Init(c)
	return s
}

// Init prepares s with class c; it must be called before use.
func (s *PerPRWSem) Init(c *Class) {
	s.class = c
	s.slots = make([]prwSlot, percpu.MaxProcs())
	s.cond.L = &s.mu
}

func (s *PerPRWSem) inst() uintptr { return uintptr(unsafe.Pointer(s)) }

// acquire and release keep the validator's code out of the read fast path.
//
//go:noinline
func (s *PerPRWSem) acquire(k Kind) { Acquire(s.class, 0, s.inst(), k, false) }

//go:noinline
func (s *PerPRWSem) release() bool { return Release(s.class, s.inst()) }

// RLock takes s for reading. Kernel: percpu_down_read().
func (s *PerPRWSem) RLock() {
	if tracking() {
		s.acquire(Read)
	}
	pid := percpu.Pin()
	if s.block.Load() == 0 && uint(pid) < uint(len(s.slots)) {
		s.slots[pid].inc()
		percpu.Unpin()
		return
	}
	percpu.Unpin()
	s.rlockSlow()
}

// tryFast is the reader fast path, including Ps beyond the slots.
func (s *PerPRWSem) tryFast() bool {
	pid := percpu.Pin()
	if s.block.Load() != 0 {
		percpu.Unpin()
		return false
	}
	if pid < len(s.slots) {
		s.slots[pid].inc()
	} else {
		s.shared.Add(1)
	}
	percpu.Unpin()
	return true
}

func (s *PerPRWSem) rlockSlow() {
	if s.tryFast() {
		return
	}
	s.mu.Lock()
	for s.block.Load() != 0 {
		s.cond.Wait()
	}
	pid := percpu.Pin()
	if pid < len(s.slots) {
		s.slots[pid].inc()
	} else {
		s.shared.Add(1)
	}
	percpu.Unpin()
	s.mu.Unlock()
}

// TryRLock takes s for reading if no writer is around.
func (s *PerPRWSem) TryRLock() bool {
	if !s.tryFast() {
		return false
	}
	if tracking() {
		Acquire(s.class, 0, s.inst(), Read, true)
	}
	return true
}

// RUnlock releases a read lock. Kernel: percpu_up_read(). With the
// validator on, a read unlock by a goroutine that holds no read lock is
// reported and refused, so the reader count stays exact.
func (s *PerPRWSem) RUnlock() {
	if tracking() && !s.release() {
		return
	}
	pid := percpu.Pin()
	if uint(pid) < uint(len(s.slots)) && s.block.Load() == 0 {
		s.slots[pid].dec()
		percpu.Unpin()
		return
	}
	percpu.Unpin()
	s.runlockSlow()
}

func (s *PerPRWSem) runlockSlow() {
	pid := percpu.Pin()
	if pid < len(s.slots) {
		s.slots[pid].dec()
	} else {
		s.shared.Add(-1)
	}
	slow := s.block.Load() != 0
	percpu.Unpin()
	if slow {
		// A writer may be waiting for the sum to reach zero: wake it.
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

func (s *PerPRWSem) readers() int64 {
	sum := s.shared.Load()
	for i := range s.slots {
		sum += s.slots[i].load()
	}
	return sum
}

// Lock takes s for writing: it blocks new readers and waits for the
// readers inside to leave. Kernel: percpu_down_write().
func (s *PerPRWSem) Lock() {
	if tracking() {
		Acquire(s.class, 0, s.inst(), Write, false)
	}
	s.wmu.Lock()
	s.mu.Lock()
	s.block.Store(1)
	s.mu.Unlock()
	percpu.Synchronize()
	s.mu.Lock()
	for s.readers() != 0 {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// TryLock takes s for writing if no writer holds it and no reader is
// inside.
func (s *PerPRWSem) TryLock() bool {
	if !s.wmu.TryLock() {
		return false
	}
	s.mu.Lock()
	s.block.Store(1)
	s.mu.Unlock()
	percpu.Synchronize()
	s.mu.Lock()
	if s.readers() != 0 {
		s.block.Store(0)
		s.cond.Broadcast()
		s.mu.Unlock()
		s.wmu.Unlock()
		return false
	}
	s.mu.Unlock()
	if tracking() {
		Acquire(s.class, 0, s.inst(), Write, true)
	}
	return true
}

// Unlock releases the write lock. Kernel: percpu_up_write().
func (s *PerPRWSem) Unlock() {
	if tracking() {
		Release(s.class, s.inst())
	}
	s.mu.Lock()
	s.block.Store(0)
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wmu.Unlock()
}
