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
// parent moves them again). A free reads the id, finds the ObjCgroup and
// uncharges whatever group it points to now: a removed group's objects
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
// lag by the same stocks until Drain, which every exact read performs.
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
//	cgroup_mutex        Controller.mu: the tree (children, names), group
//	                    creation and removal, reparenting, ObjCgroup ids.
//	memcg_drain_mutex   Controller.drainMu: one Drain at a time (the
//	                    kernel's percpu_charge_mutex). Taken inside
//	                    cgroup_mutex by removal; never held while a
//	                    shrinker runs.
//	shrinker_rwsem      Controller.shrinkMu: the shrinker list; read-held
//	                    while shrinkers run (a shrinker may free objects,
//	                    which takes slab's locks inside it), write-held to
//	                    register or unregister.
//
// Against package slab: slab never takes a memcg lock — charges and
// uncharges take none (the pinned stock operations, atomics), so slab
// may uncharge under its list_lock — and memcg calls into slab's locks
// in two places only: Drain (and so Remove) runs the flusher, which takes
// slab_mutex, slab_flush_lock and list_lock, inside cgroup_mutex and
// memcg_drain_mutex; reclaim runs it with no memcg lock held. A shrinker
// that frees or destroys takes slab's locks inside shrinker_rwsem (read).
// So the global order is cgroup_mutex → memcg_drain_mutex → slab_mutex →
// slab_flush_lock → list_lock, and shrinker_rwsem → slab_mutex. The 2014 lesson
// (activate_kmem_mutex → memcg_slab_mutex → slab_mutex) was that a
// memcg-side lock walking a group's caches must not rely on slab_mutex
// being taken inside it by accident; here no memcg lock walks caches at
// all (the per-cache breakdown is slab's, under slab_mutex alone), and
// lockdep records the order above in every test.
//
// # Files
//
// Group renders the kernel's cgroup v2 files: memory.current,
// memory.peak, memory.max, memory.high, memory.events, memory.stat and
// memory.numa_stat (FileContents); SetMax/SetHigh and ParseLimit take
// what a write to memory.max or memory.high takes ("max" or bytes with
// a K, M, G or T suffix).
package memcg
