// Package lockdep is a runtime lock-dependency validator in the manner of
// Linux lockdep, and the validated lock types every other hotslab package
// uses.
//
// # What it owns
//
// Lock classes (Class; a subclass annotates the legitimate nesting of one
// class, see Mutex.LockNested), the dependency graph between classes, the
// per-goroutine stacks of held locks, the cache of validated lock chains,
// and the reports.
//
// Validation is by class, not instance: an order seen once on any two
// instances is the rule for all of them, so a deadlock is found the first
// time both orders are *possible*, not when two goroutines actually collide.
// Every acquisition adds an edge from each held lock to the new one and
// searches the graph (BFS) for a path back, which finds cycles of any
// length. Edges carry the four types of the 2020 recursive-read rules
// (-(ER)->, -(EN)->, -(SR)->, -(SN)->); only a strong path (no -(xR)->
// followed by -(Sx)->) closes a deadlock, so recursive readers raise no
// false alarm and non-recursive readers (sync.RWMutex, PerPRWSem) are
// checked as the blocking locks they are.
//
// A chain of held locks that was validated once is remembered by a hash of
// its (class, subclass, kind, trylock) entries; on a cached chain an
// acquisition costs a goroutine-id read, a sharded map lookup and a push,
// with no allocation.
//
// # Locks
//
// lockdep's own bookkeeping uses raw sync locks, never validated (the
// kernel's lockdep_lock is an arch spinlock for the same reason): graphMu
// (graph, subclass nodes), reportMu (report list, handler), and the task
// and chain shard locks. Each is taken alone, never nested in another, and
// none is held while a report handler runs.
//
// # Invariants
//
//   - A goroutine's held stack lists exactly the validated locks it holds,
//     in acquisition order; a task record exists only while it is non-empty.
//   - Every cached chain was validated: for each held lock h and the new
//     lock n of that chain, the edge h→n with the chain's types exists.
//   - The graph has no strong cycle while the validator is on; the first
//     report switches the validator off (debug_locks_off) unless
//     SetContinueAfterReport(true).
//
// # Cost
//
// Off (the default outside tests; HOTSLAB_LOCKDEP=1 or Enable turns it on),
// each lock operation adds one load of a global flag. The validated types
// are Mutex, RWMutex (non-recursive readers), RecursiveRWMutex and
// PerPRWSem, the per-P read-write semaphore used for mem_hotplug_lock.
package lockdep
