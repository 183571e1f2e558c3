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

var (
	enabled atomic.Bool
	// continueAfterReport keeps the validator on after a report.
	continueAfterReport atomic.Bool
)

func init() {
	if v := os.Getenv("HOTSLAB_LOCKDEP"); v == "1" || v == "on" || v == "true" {
		enabled.Store(true)
	}
}

// Enable switches the validator on. Call it before any validated lock is
// taken (at program start or in TestMain): locks taken while it was off are
// unknown to it. The environment variable HOTSLAB_LOCKDEP=1 enables it at
// start.
func Enable() { enabled.Store(true) }

// Disable switches the validator off. Locks then cost one extra load.
func Disable() { enabled.Store(false) }

// Enabled reports whether the validator is on.
func Enabled() bool { return enabled.Load() }

// SetContinueAfterReport sets whether the validator stays on after a report.
// By default, like the kernel's debug_locks_off, the first report switches
// it off, because the state that follows a real bug is not worth checking.
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
// and of user-written ones. Kernel: lock_acquire().
func Acquire(c *Class, sub int, inst uintptr, k Kind, try bool) {
	if !enabled.Load() || c == nil {
		return
	}
	acquire(c, sub, inst, k, try)
}

func acquire(c *Class, sub int, inst uintptr, k Kind, try bool) {
	if sub < 0 || sub >= MaxSubclasses {
		report(&Report{Kind: BadSubclass, Lock: c.name}, nil, nil)
		return
	}
	n := c.nodeFor(sub)
	id := goid.Get()
	t := lookupTask(id, true)
	if t.depth >= MaxDepth {
		report(&Report{Kind: DepthExceeded, Lock: n.name()}, t, nil)
		return
	}
	var prev uint64
	if t.depth > 0 {
		prev = t.held[t.depth-1].key
	}
	key := chainKey(prev, n, k, try)
	if !chainCached(key) {
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
// false, when the goroutine does not hold that lock. Kernel: lock_release().
func Release(c *Class, inst uintptr) bool {
	if !enabled.Load() || c == nil {
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
	if !enabled.Load() {
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
	if !enabled.Load() {
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
	enabled.Store(true)
}

func callers(skip int) []uintptr {
	pcs := make([]uintptr, 24)
	n := runtime.Callers(skip, pcs)
	return pcs[:n]
}
