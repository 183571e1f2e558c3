package lockdep

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/petermattis/goid"
)

// Kind is how a lock is acquired.
type Kind uint8

const (
	// Write is an exclusive acquisition (mutex lock, write lock).
	Write Kind = iota
	// Read is a non-recursive shared acquisition: it blocks behind a writer
	// that is merely waiting (sync.RWMutex.RLock, percpu_down_read).
	Read
	// RecursiveRead is a shared acquisition that blocks only on a writer
	// holding the lock (the kernel's read_lock of an rwlock_t).
	RecursiveRead
)

// String returns the lock kind's name.
func (k Kind) String() string {
	switch k {
	case Write:
		return "write"
	case Read:
		return "read"
	case RecursiveRead:
		return "recursive-read"
	}
	return "kind?"
}

// MaxDepth is the number of locks one goroutine may hold at once (the
// kernel's MAX_LOCK_DEPTH).
const MaxDepth = 48

// The validator's modes. In modeOff nothing is recorded. In modeTrack
// (validation switched off by a report) every goroutine's held stack is
// still kept exact, but nothing is validated or reported, so that a later
// Enable starts from the locks really held. In modeOn acquisitions are
// tracked and validated.
const (
	modeOff uint32 = iota
	modeTrack
	modeOn
)

var (
	mode atomic.Uint32
	// continueAfterReport keeps the validator on after a report.
	continueAfterReport atomic.Bool
)

func init() {
	if v := os.Getenv("HOTSLAB_LOCKDEP"); v == "1" || v == "on" || v == "true" {
		mode.Store(modeOn)
	}
}

// tracking reports whether lock operations must tell the validator: it is
// on, or a report switched its validation off but held stacks are kept.
func tracking() bool { return mode.Load() != modeOff }

// Enable switches the validator on. The environment variable
// HOTSLAB_LOCKDEP=1 enables it at start.
//
// After a report switched validation off, Enable resumes it safely at any
// time: the held-lock stacks were kept meanwhile, so locks taken or
// released since the report, and locks held across the Enable, are known.
// After Disable (or at start) nothing was recorded, so call Enable while no
// goroutine holds a validated lock (at program start, in TestMain): a lock
// taken while off and released after Enable is reported as a bad unlock,
// and one taken before a Disable and released while off stays on its
// goroutine's stack.
func Enable() { mode.Store(modeOn) }

// Disable switches the validator and its held-lock bookkeeping off. Locks
// then cost one extra load. See Enable for switching it back on.
func Disable() { mode.Store(modeOff) }

// Enabled reports whether the validator is on (validating).
func Enabled() bool { return mode.Load() == modeOn }

// SetContinueAfterReport sets whether the validator stays on after a report.
// By default, like the kernel's debug_locks_off, the first report switches
// validation off, because the state that follows a real bug is not worth
// checking; held locks are still tracked so that Enable can resume.
func SetContinueAfterReport(on bool) { continueAfterReport.Store(on) }

// held is one entry of a goroutine's held-lock stack.
type held struct {
	inst uintptr // lock instance address
	node *node
	kind Kind
	try  bool
	key  uint64 // chain key of the stack up to and including this entry
}

// task is the lockdep state of one goroutine (the kernel's task_struct
// held_locks). Only its own goroutine touches it.
type task struct {
	id    int64
	depth int
	held  [MaxDepth]held
}

const taskShards = 64

type taskShard struct {
	mu sync.Mutex // lockdep's own raw lock
	m  map[int64]*task
	_  [40]byte
}

var (
	tasks    [taskShards]taskShard
	taskPool = sync.Pool{New: func() any { return new(task) }}
)

func init() {
	for i := range tasks {
		tasks[i].m = make(map[int64]*task)
	}
}

// lookupTask returns the task of goroutine id, creating it when create is
// set. A task exists only while its goroutine holds at least one lock.
func lookupTask(id int64, create bool) *task {
	sh := &tasks[uint64(id)%taskShards]
	sh.mu.Lock()
	t := sh.m[id]
	if t == nil && create {
		t = taskPool.Get().(*task)
		t.id = id
		t.depth = 0
		sh.m[id] = t
	}
	sh.mu.Unlock()
	return t
}

func dropTask(t *task) {
	sh := &tasks[uint64(t.id)%taskShards]
	sh.mu.Lock()
	delete(sh.m, t.id)
	sh.mu.Unlock()
	taskPool.Put(t)
}

// Chain cache: every held-lock sequence validated once. The key of a
// sequence hashes each entry's node, kind and trylock bit.
const chainShards = 64

type chainShard struct {
	mu sync.RWMutex // lockdep's own raw lock
	m  map[uint64]struct{}
	_  [32]byte
}

var chains [chainShards]chainShard

func init() {
	for i := range chains {
		chains[i].m = make(map[uint64]struct{})
	}
}

func chainKey(prev uint64, n *node, k Kind, try bool) uint64 {
	x := uint64(n.id)<<3 | uint64(k)<<1
	if try {
		x |= 1
	}
	// splitmix64 of the pair; distinct sequences collide with ~2^-64 odds.
	h := prev ^ (x + 0x9e3779b97f4a7c15 + prev<<6 + prev>>2)
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	if h == 0 {
		h = 1
	}
	return h
}

func chainCached(key uint64) bool {
	sh := &chains[key%chainShards]
	sh.mu.RLock()
	_, ok := sh.m[key]
	sh.mu.RUnlock()
	return ok
}

func chainAdd(key uint64) {
	sh := &chains[key%chainShards]
	sh.mu.Lock()
	sh.m[key] = struct{}{}
	sh.mu.Unlock()
}

// Acquire tells the validator that the calling goroutine is about to take
// lock instance inst (its address) of class c, subclass sub, in the given
// kind. try marks a trylock, which adds no dependency on the lock taken.
// Call it before blocking on the lock, so that a deadlock is reported
// instead of hanging. It is the building block of the validated lock types
// and of user-written ones. While a report has switched validation off,
// it only records the lock on the goroutine's held stack. Kernel:
// lock_acquire().
func Acquire(c *Class, sub int, inst uintptr, k Kind, try bool) {
	if !tracking() || c == nil {
		return
	}
	acquire(c, sub, inst, k, try)
}

func acquire(c *Class, sub int, inst uintptr, k Kind, try bool) {
	on := mode.Load() == modeOn
	if sub < 0 || sub >= MaxSubclasses {
		if on {
			report(&Report{Kind: BadSubclass, Lock: c.name}, nil, nil)
		}
		return
	}
	n := c.nodeFor(sub)
	id := goid.Get()
	t := lookupTask(id, true)
	if t.depth >= MaxDepth {
		if on {
			report(&Report{Kind: DepthExceeded, Lock: n.name()}, t, nil)
		}
		return
	}
	var prev uint64
	if t.depth > 0 {
		prev = t.held[t.depth-1].key
	}
	// The key is computed even when not validating: a later acquisition
	// chains onto it, and a wrong key could hit a cached chain that does
	// not hold these locks.
	key := chainKey(prev, n, k, try)
	if on && !chainCached(key) {
		if validate(t, n, inst, k, try) {
			chainAdd(key)
		}
	}
	h := &t.held[t.depth]
	*h = held{inst: inst, node: n, kind: k, try: try, key: key}
	t.depth++
}

// Release tells the validator that the calling goroutine releases lock
// instance inst of class c. It reports bad unlock balance, and returns
// false, when the goroutine does not hold that lock. While a report has
// switched validation off it only removes the lock from the goroutine's
// held stack and returns true. Kernel: lock_release().
func Release(c *Class, inst uintptr) bool {
	if !tracking() || c == nil {
		return true
	}
	return release(c, inst)
}

func release(c *Class, inst uintptr) bool {
	id := goid.Get()
	t := lookupTask(id, false)
	i := -1
	if t != nil {
		for j := t.depth - 1; j >= 0; j-- {
			if t.held[j].inst == inst && t.held[j].node.class == c {
				i = j
				break
			}
		}
	}
	if i < 0 {
		if mode.Load() != modeOn {
			return true // not validating: nothing to report or refuse
		}
		reportBadUnlock(c, t, id)
		return false
	}
	// Remove entry i and recompute the chain keys above it, as the kernel
	// does when a lock other than the last is released.
	copy(t.held[i:t.depth-1], t.held[i+1:t.depth])
	t.depth--
	t.held[t.depth] = held{}
	for j := i; j < t.depth; j++ {
		var prev uint64
		if j > 0 {
			prev = t.held[j-1].key
		}
		h := &t.held[j]
		h.key = chainKey(prev, h.node, h.kind, h.try)
	}
	if t.depth == 0 {
		dropTask(t)
	}
	return true
}

// Held reports whether the calling goroutine holds lock instance inst of
// class c (the kernel's lockdep_is_held). It returns true when the
// validator is off, so it can be used in assertions.
func Held(c *Class, inst uintptr) bool {
	if !Enabled() {
		return true
	}
	t := lookupTask(goid.Get(), false)
	if t == nil {
		return false
	}
	for j := 0; j < t.depth; j++ {
		if t.held[j].inst == inst && t.held[j].node.class == c {
			return true
		}
	}
	return false
}

// HeldCount returns how many validated locks the calling goroutine holds
// (0 when the validator is off).
func HeldCount() int {
	if !Enabled() {
		return 0
	}
	t := lookupTask(goid.Get(), false)
	if t == nil {
		return 0
	}
	return t.depth
}

// Reset forgets every dependency, cached chain, held lock and report, and
// switches the validator on. It exists for tests of the validator itself
// and must not be called while any goroutine holds a validated lock.
func Reset() {
	graphMu.Lock()
	for _, n := range nodes {
		n.out = nil
		n.usedRead, n.usedWrite = false, false
	}
	graphMu.Unlock()
	for i := range chains {
		chains[i].mu.Lock()
		clear(chains[i].m)
		chains[i].mu.Unlock()
	}
	for i := range tasks {
		tasks[i].mu.Lock()
		clear(tasks[i].m)
		tasks[i].mu.Unlock()
	}
	reportMu.Lock()
	reports = nil
	reportMu.Unlock()
	mode.Store(modeOn)
}

func callers(skip int) []uintptr {
	pcs := make([]uintptr, 24)
	n := runtime.Callers(skip, pcs)
	return pcs[:n]
}
