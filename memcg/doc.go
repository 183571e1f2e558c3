// Package memcg is hotslab's memory controller for kernel memory: the
// kernel's memcg kmem accounting as it has been since the 2020 slab
// controller rework. Groups form a tree under a root; every accounted
// object is charged, object size plus its per-object reference, to the
// group that allocated it and to every ancestor; limits (memory.max,
// memory.high) reclaim and then fail with ENOMEM; removing a group moves
// its charges to the parent without walking a single object.
//
// # The design (per object, not per cache clone)
//
// An accounted object records an obj_cgroup id, a uint32, in a
// pointer-free vector at the end of its slab (package slab keeps it; the
// garbage collector sees nothing per object). An ObjCgroup is the
// indirection the 2020 design introduced: it points to a Group, and when
// the group is removed the pointer is switched to the parent (and the
// group's ObjCgroups join the parent's list, so a later removal of the
// parent moves them again). An uncharge (package slab's: when the object
// goes back to its slab or another allocation takes it) reads the id,
// finds the ObjCgroup and uncharges whatever group it points to now: a removed group's objects
// uncharge its nearest live ancestor, and no object is visited at
// removal. The 2014 design (a clone of every cache per group, whole pages
// charged, memcg_slab_mutex) is what this replaces; its guarantees stay:
// no charge lost or counted twice, group removal and cache destruction
// safe against each other, group creation safe against everything.
//
// # Charging and the per-P stocks
//
// Usage is kept in bytes, in a counter per group (the kernel's
// page_counter): a charge adds to the group and every ancestor, and fails
// (undoing what it added) if any of them would exceed its max. Charging
// every allocation that way would put an atomic add per ancestor on every
// allocation, so, as the kernel's obj_stock does, each P keeps a stock:
// bytes pre-charged to one ObjCgroup (in batches of ChargeBatch), a
// pending reference count for it, and pending slab statistics for one
// node. An accounted allocation on a P whose stock holds its ObjCgroup
// with enough bytes is a pinned subtraction; a free adds the bytes back.
// The stock is drained (its bytes returned to the counters, its pending
// counts flushed) when it switches ObjCgroup, when it holds more than two
// batches, and by Drain.
//
// The bound: memory.current (the counter) never exceeds memory.max —
// a charge that would cross it fails and reclaims — and the bytes of the
// live objects never exceed memory.current. Up to ChargeBatch bytes per P
// (times the number of Ps, at most 2 ChargeBatch per P after frees) of
// memory.current may be stocked rather than used; before an allocation
// fails at the max every stock is drained, so a group is refused only when
// its live objects really fill it. Statistics (memory.stat, numa_stat)
// lag by the same stocks (and by the charges package slab keeps for
// reuse) until Drain; the file renderers read the counters as they are,
// as the kernel's do.
//
// # Charges kept for reuse in the slab layer
//
// Package slab does not uncharge an accounted object when it is freed to
// a P's sheaf: the object keeps its ObjCgroup id there, and the next
// allocation through the same group on that P takes it as it is — no
// charge, no uncharge, no statistics to move (one compare of its vector
// entry with Group.TargetID). A plain allocation of it drops the charge,
// another group's moves it, and its return to a slab (a flush, a full
// sheaf, a remote free) uncharges it. So memory.current and the slab
// statistics also count freed objects waiting in sheaves: per accounted
// cache at most its sheaf capacity times three sheaves per P plus the
// barn's full sheaves per node. The controller's flusher (SetFlusher;
// slab sets it) gives them back: Drain calls it first, and so does
// reclaim.
//
// # Reclaim at the limits
//
// At memory.max a charge drains the stocks, retries, then flushes the
// slab layer's kept charges (the "drain sheaves"), retries, then
// calls the registered shrinkers (the kernel's count/scan API;
// memcg-aware ones are asked about the group over its limit and each
// descendant), retries, and only then fails: errors.Is(err,
// syscall.ENOMEM), counted as "oom" in memory.events of the group and its
// ancestors ("max" counts every time the limit was hit). Above
// memory.high a charge succeeds, counts "high" and reclaims the same way,
// once, without failing. Shrinking slab caches (freeing empty slabs) is
// not a step: with per-object charging a free object in a slab is
// already uncharged, so it would not lower a group's usage (it returns
// system memory, which slab's own Shrink does).
//
// # Locks, in lock order (outermost first)
//
//	shrinker_rwsem      Controller.shrinkMu (recursive for readers): the
//	                    shrinker list; read-held while reclaim runs the
//	                    shrinkers and empties the stocks and sheaves
//	                    between rounds, write-held to register or
//	                    unregister. A shrinker may create or remove
//	                    groups (cgroup_mutex inside it), free objects and
//	                    destroy caches (slab's locks inside it), or
//	                    allocate accounted memory (reclaim again).
//	cgroup_mutex        Controller.mu: the tree (children, names), group
//	                    creation and removal, reparenting, ObjCgroup ids.
//	                    Reclaim never takes it (it walks children
//	                    snapshots), so a charge at a limit never waits for
//	                    a group's creation or removal.
//	memcg_drain_mutex   Controller.drainMu: one Drain at a time (the
//	                    kernel's percpu_charge_mutex); inside cgroup_mutex
//	                    in Drain and Remove. A charge at a limit takes it
//	                    to empty the stocks, so it may wait for a Drain in
//	                    progress to end.
//
// Against package slab: slab never takes a memcg lock — charges and
// uncharges take none (the pinned stock operations, atomics), so slab may
// uncharge under its list_lock — and memcg reaches slab's locks through
// the flusher (slab_mutex, slab_flush_lock, list_lock), which Drain (and
// so Remove) runs inside cgroup_mutex and memcg_drain_mutex and reclaim
// runs with at most shrinker_rwsem held, and through shrinkers. So the
// global order is shrinker_rwsem → cgroup_mutex → memcg_drain_mutex →
// slab_mutex → slab_flush_lock → list_lock. The 2014 lesson
// (activate_kmem_mutex → memcg_slab_mutex → slab_mutex) was that a
// memcg-side lock walking a group's caches must not rely on slab_mutex
// being taken inside it by accident; here no memcg lock walks caches at
// all (the per-cache breakdown is slab's, under slab_mutex alone), the
// one memcg path into slab_mutex (the flusher) is written down above,
// and lockdep checks the order in every test.
//
// # Files
//
// Group renders the kernel's cgroup v2 files: memory.current,
// memory.peak, memory.max, memory.high, memory.events, memory.stat and
// memory.numa_stat (FileContents); SetMax/SetHigh and ParseLimit take
// what a write to memory.max or memory.high takes ("max" or bytes with
// a K, M, G or T suffix).
package memcg
