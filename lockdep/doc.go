// Package lockdep is a runtime lock-dependency validator in the manner of
// Linux lockdep, and the validated lock types every other hotslab package
// uses.
//
// # What it owns
//
// Lock classes (Class; a subclass annotates the legitimate nesting of one
// class, see Mutex.LockNested), the dependency graph between classes, the
// per-goroutine stacks of held locks, the cache of validated lock chains,
// the mode (on, tracking only, off) and the reports.
//
// Validation is by class, not instance: an order seen once on any two
// instances is the rule for all of them, so a deadlock is found the first
// time both orders are *possible*, not when two goroutines actually collide.
// An acquisition whose chain of held locks is new adds an edge from each
// held lock to the new one (a trylock adds none: it cannot block) and
// searches the graph (BFS) for a path back, which finds cycles of any
// length. Edges carry the four types of the 2020 recursive-read rules
// (-(ER)->, -(EN)->, -(SR)->, -(SN)->); only a strong path (no -(xR)->
// followed by -(Sx)->) closes a deadlock, so recursive readers raise no
// false alarm and non-recursive readers (sync.RWMutex, PerPRWSem) are
// checked as the blocking locks they are.
//
// A chain of held locks that was validated once is remembered by a hash of
// its (class, subclass, kind, trylock) entries; on a cached chain an
// acquisition costs a goroutine-id read, two sharded map lookups (the
// goroutine's held stack and the chain cache) and a push, with no
// allocation.
//
// # Modes
//
// On (Enable, Reset, HOTSLAB_LOCKDEP=1 at start; lockdeptest.Main in
// tests): acquisitions and releases are tracked and validated. The first
// report switches validation off, like the kernel's debug_locks_off, unless
// SetContinueAfterReport(true); a report racing with it is dropped. Held
// stacks are still kept exact after that report, so Enable may switch
// validation back on at any time, even while goroutines hold locks, and it
// sees exactly the locks held. Off (the default outside tests, and after
// Disable): nothing is recorded, so Enable after Disable expects no
// validated lock to be held (see Enable). Held and HeldCount answer only
// while validation is on (true and 0 otherwise).
//
// # Locks
//
// lockdep's own bookkeeping uses raw sync locks, never validated (the
// kernel's lockdep_lock is an arch spinlock for the same reason): graphMu
// (graph, subclass nodes), reportMu (report list, handler), and the task
// and chain shard locks. Each is taken alone, never nested in another, and
// none is held while a report handler runs. The mode is an atomic word.
//
// The validated lock types are built on sync locks of their own, held only
// inside their methods: RecursiveRWMutex's mu (with its condition
// variable), and PerPRWSem's wmu (writers) then mu (slow readers, writer
// wait), in that order.
//
// # Invariants
//
//   - While the validator is on, or tracking after a report, a goroutine's
//     held stack lists exactly the validated locks it holds, in acquisition
//     order (bar an acquisition with a bad subclass or beyond MaxDepth,
//     which is reported while on and never pushed); a task record exists
//     only while it is non-empty.
//   - Every entry's chain key hashes the stack up to it, whether or not it
//     was validated; every cached chain was validated: for each held lock h
//     and the new lock n of that chain, the edge h→n with the chain's types
//     exists.
//   - The graph has no strong cycle: an acquisition that would close one is
//     reported and adds no edge.
//
// # Cost
//
// Off, each lock operation adds one load of the mode. Tracking after a
// report, it also updates its goroutine's held stack (a goroutine-id read
// and a sharded map lookup) but validates nothing. The validated types are
// Mutex, RWMutex (non-recursive readers), RecursiveRWMutex and PerPRWSem,
// the per-P read-write semaphore used for mem_hotplug_lock.
package lockdep
