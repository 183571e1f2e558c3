package lockdep

import (
	"sync"
	"unsafe"
)

// Mutex is a sync.Mutex validated by lockdep. Initialise it with Init
// before first use; a Mutex never initialised works but is not validated.
type Mutex struct {
	mu    sync.Mutex
	class *Class
}

// NewMutex returns a Mutex of class c.
func NewMutex(c *Class) *Mutex { return &Mutex{class: c} }

// Init sets the lock class. Call it before the mutex is used.
func (m *Mutex) Init(c *Class) { m.class = c }

// Class returns the lock class (nil if the mutex was never initialised).
func (m *Mutex) Class() *Class { return m.class }

func (m *Mutex) inst() uintptr { return uintptr(unsafe.Pointer(m)) }

// Lock locks m. Kernel: mutex_lock().
func (m *Mutex) Lock() {
	if tracking() {
		Acquire(m.class, 0, m.inst(), Write, false)
	}
	m.mu.Lock()
}

// LockNested locks m as subclass sub of its class, for the legitimate
// nesting of two locks of one class (always in one order). Kernel:
// mutex_lock_nested().
func (m *Mutex) LockNested(sub int) {
	if tracking() {
		Acquire(m.class, sub, m.inst(), Write, false)
	}
	m.mu.Lock()
}

// TryLock tries to lock m and reports whether it succeeded. A trylock adds
// no dependency on m. Kernel: mutex_trylock().
func (m *Mutex) TryLock() bool {
	if !m.mu.TryLock() {
		return false
	}
	if tracking() {
		Acquire(m.class, 0, m.inst(), Write, true)
	}
	return true
}

// Unlock unlocks m. Unlocking a mutex the goroutine does not hold is
// reported; if the mutex is not locked at all the unlock is refused
// (instead of the runtime's fatal error). Kernel: mutex_unlock().
func (m *Mutex) Unlock() {
	if tracking() && !Release(m.class, m.inst()) && m.mu.TryLock() {
		m.mu.Unlock() // it was not locked: report only, change nothing
		return
	}
	m.mu.Unlock()
}

// AssertHeld reports whether the calling goroutine holds m (always true
// when the validator is off). Kernel: lockdep_assert_held().
func (m *Mutex) AssertHeld() bool { return Held(m.class, m.inst()) }

// RWMutex is a sync.RWMutex validated by lockdep. Its readers are
// non-recursive: a reader blocks behind a waiting writer, so taking a read
// lock twice can deadlock and is reported.
type RWMutex struct {
	mu    sync.RWMutex
	class *Class
}

// NewRWMutex returns an RWMutex of class c.
func NewRWMutex(c *Class) *RWMutex { return &RWMutex{class: c} }

// Init sets the lock class. Call it before the lock is used.
func (rw *RWMutex) Init(c *Class) { rw.class = c }

func (rw *RWMutex) inst() uintptr { return uintptr(unsafe.Pointer(rw)) }

// Lock takes rw for writing. Kernel: down_write().
func (rw *RWMutex) Lock() {
	if tracking() {
		Acquire(rw.class, 0, rw.inst(), Write, false)
	}
	rw.mu.Lock()
}

// TryLock tries to take rw for writing.
func (rw *RWMutex) TryLock() bool {
	if !rw.mu.TryLock() {
		return false
	}
	if tracking() {
		Acquire(rw.class, 0, rw.inst(), Write, true)
	}
	return true
}

// Unlock releases the write lock.
func (rw *RWMutex) Unlock() {
	if tracking() && !Release(rw.class, rw.inst()) && rw.mu.TryLock() {
		rw.mu.Unlock()
		return
	}
	rw.mu.Unlock()
}

// RLock takes rw for reading (non-recursive). Kernel: down_read().
func (rw *RWMutex) RLock() {
	if tracking() {
		Acquire(rw.class, 0, rw.inst(), Read, false)
	}
	rw.mu.RLock()
}

// TryRLock tries to take rw for reading.
func (rw *RWMutex) TryRLock() bool {
	if !rw.mu.TryRLock() {
		return false
	}
	if tracking() {
		Acquire(rw.class, 0, rw.inst(), Read, true)
	}
	return true
}

// RUnlock releases a read lock.
func (rw *RWMutex) RUnlock() {
	if tracking() && !Release(rw.class, rw.inst()) && rw.mu.TryLock() {
		rw.mu.Unlock()
		return
	}
	rw.mu.RUnlock()
}

// RecursiveRWMutex is a reader-preferring read-write lock whose readers
// are recursive: a reader waits only for a writer that holds the lock, never
// for one that waits, so one goroutine may take the read side twice. It is
// the kernel's rwlock_t in the recursive-read rules. Writers can starve
// under a steady stream of readers.
type RecursiveRWMutex struct {
	mu      sync.Mutex // internal; held only inside these methods
	cond    sync.Cond
	readers int
	writer  bool
	class   *Class
}

// NewRecursiveRWMutex returns a RecursiveRWMutex of class c.
func NewRecursiveRWMutex(c *Class) *RecursiveRWMutex { return &RecursiveRWMutex{class: c} }

// Init sets the lock class. Call it before the lock is used.
func (rw *RecursiveRWMutex) Init(c *Class) { rw.class = c }

func (rw *RecursiveRWMutex) inst() uintptr { return uintptr(unsafe.Pointer(rw)) }

func (rw *RecursiveRWMutex) wait() {
	if rw.cond.L == nil {
		rw.cond.L = &rw.mu
	}
	rw.cond.Wait()
}

func (rw *RecursiveRWMutex) wake() {
	if rw.cond.L != nil {
		rw.cond.Broadcast()
	}
}

// Lock takes rw for writing. Kernel: write_lock().
func (rw *RecursiveRWMutex) Lock() {
	if tracking() {
		Acquire(rw.class, 0, rw.inst(), Write, false)
	}
	rw.mu.Lock()
	for rw.writer || rw.readers > 0 {
		rw.wait()
	}
	rw.writer = true
	rw.mu.Unlock()
}

// TryLock tries to take rw for writing.
func (rw *RecursiveRWMutex) TryLock() bool {
	rw.mu.Lock()
	ok := !rw.writer && rw.readers == 0
	if ok {
		rw.writer = true
	}
	rw.mu.Unlock()
	if ok && tracking() {
		Acquire(rw.class, 0, rw.inst(), Write, true)
	}
	return ok
}

// Unlock releases the write lock. An unlock by a goroutine that does not
// hold it is reported; if no writer holds the lock it changes nothing.
func (rw *RecursiveRWMutex) Unlock() {
	if tracking() {
		Release(rw.class, rw.inst())
	}
	rw.mu.Lock()
	if rw.writer {
		rw.writer = false
		rw.wake()
	}
	rw.mu.Unlock()
}

// RLock takes rw for reading; it waits only while a writer holds rw.
// Kernel: read_lock().
func (rw *RecursiveRWMutex) RLock() {
	if tracking() {
		Acquire(rw.class, 0, rw.inst(), RecursiveRead, false)
	}
	rw.mu.Lock()
	for rw.writer {
		rw.wait()
	}
	rw.readers++
	rw.mu.Unlock()
}

// TryRLock tries to take rw for reading.
func (rw *RecursiveRWMutex) TryRLock() bool {
	rw.mu.Lock()
	ok := !rw.writer
	if ok {
		rw.readers++
	}
	rw.mu.Unlock()
	if ok && tracking() {
		Acquire(rw.class, 0, rw.inst(), RecursiveRead, true)
	}
	return ok
}

// RUnlock releases a read lock; a read unlock with no reader inside is
// reported and refused.
func (rw *RecursiveRWMutex) RUnlock() {
	if tracking() {
		Release(rw.class, rw.inst())
	}
	rw.mu.Lock()
	if rw.readers > 0 {
		rw.readers--
		if rw.readers == 0 {
			rw.wake()
		}
	}
	rw.mu.Unlock()
}
