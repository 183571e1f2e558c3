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
// # Reclaim at the limits
//
// At memory.max a charge drains the stocks, retries, then calls the
// registered shrinkers (the kernel's count/scan API; memcg-aware ones are
// asked about the group over its limit and each descendant), retries, and
// only then fails: errors.Is(err, syscall.ENOMEM), counted as "oom" in
// memory.events of the group and its ancestors ("max" counts every time
// the limit was hit). Above memory.high a charge succeeds, counts "high"
// and reclaims the same way, once, without failing. Draining sheaves or
// shrinking slab caches is not a step: with per-object charging a free
// object is already uncharged, so neither lowers a group's usage (they
// return system memory, which slab's own Shrink does).
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
// Against package slab: memcg takes none of its locks while holding one
// of slab's, and holds none of its own while slab holds slab_mutex,
// slab_flush_lock or a list_lock: charges and uncharges run before and
// after the slab operation, with no lock held, and the pinned stock
// operations take no lock at all. The only memcg lock a slab path can
// reach is shrinker_rwsem (read), from a charge at the limit, before the
// slab allocation: so the order is shrinker_rwsem → slab_mutex → list_lock
// when a shrinker frees or destroys. The 2014 lesson
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
