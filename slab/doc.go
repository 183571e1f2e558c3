// Package slab is a SLUB-style slab allocator over hotslab's hot-pluggable
// memory (package mem): caches of fixed-size objects that live outside the
// Go heap, so the garbage collector never scans them.
//
// # Layers
//
// An allocation is served by the first layer that can:
//
//	per-P sheaves    main and spare arrays of free objects of the P's node,
//	                 popped/pushed on the goroutine's P with no lock and no
//	                 atomic instruction (kernel 6.18 sheaves): in an
//	                 unpreemptible assembly function on amd64 (fast_amd64.s),
//	                 else with the goroutine pinned
//	node barn        per-node stock of full and empty sheaves, traded
//	                 whole with the P under the barn lock
//	partial slabs    per-node list of slabs with free objects, under the
//	                 node's list_lock; the freelist is threaded through
//	                 the free objects themselves (pointer hardened)
//	page allocator   a new slab of 1<<order pages from mem, on the node
//	                 asked for or, failing that, in zonelist order
//
// A P's main and spare sheaves hold objects of the P's node only
// (procNode: its own node, or the nearest with memory): a sheaf records
// its node and goes onto a P only of that node (a goroutine that migrated
// while refilling puts it in the barn instead), and a flush empties every
// P's sheaves whenever a P's node changes. When the P's node is out of
// memory a plain Alloc takes one object from another node without
// touching the sheaves; a node-specific allocation (AllocNode) pops the
// P's main sheaf only for the P's own node, else goes to the node's slabs
// directly, and with ThisNode never falls back. An object freed on a P of
// another node (a remote free) goes into the P's remote sheaf; a full
// remote sheaf goes whole to its node's barn (or, if that is full, its
// objects back to their slabs).
//
// The slab header (struct slab) lives pointer-free in the Owner words of
// the slab's struct pages (mem's vmemmap), so no Go object exists per slab
// or per page and the collector sees none of it. Pointer → slab is
// arithmetic: the cache's copy of the System's range and vmemmap gives the
// page (hdrAt, mem.PageMap.PageAt: no presence load — a page of an absent
// block reads as zeros, cache id 0, which no cache has), whose header
// holds the cache id, node and slab base (every page) and, on the head
// page, inuse, the freelist offset and the pfn links of the partial list.
//
// Cache.Alloc and Cache.Free are each one call to an unpreemptible NOSPLIT
// assembly function on amd64 (cacheAlloc, cacheFree; Free's validation
// included), which tail-jumps to the pinned Go path (cacheAllocGo,
// cacheFreeGo) for anything but the common case; elsewhere, in race
// builds and with the purego build tag, the Go path is the whole of it.
// Every pinned section of the Go paths is pin … unpin (pcpu.go).
//
// # Files
//
//	allocator.go  Allocator: New, Close, the cache list and id table
//	cache.go      Cache (a user's handle), kmemCache, cacheNode, stats
//	create.go     NewCache with merging, Destroy, cache ids
//	geometry.go   alignment, slot size, slab order, sheaf capacity
//	pcpu.go       the per-P sheaves and pin/unpin
//	alloc.go      the allocation path, node-specific allocation
//	free.go       the free path, remote frees
//	barn.go       sheaves and the per-node barn
//	flush.go      the flush protocol, shrink
//	bulk.go       AllocBulk, FreeBulk
//	prefill.go    prefilled sheaves (Sheaf)
//	magazine.go   goroutine-owned magazines (Magazine)
//	page.go       struct slab in struct page, the freelist, new slabs
//	kmalloc.go    kmalloc, kfree, ksize, krealloc
//	hotplug.go    memory and node notifiers, each P's node
//	typed.go      Typed[T], AllocBytes
//	stats.go      counters; slabinfo.go: /proc/slabinfo
//	errors.go     the error sentinels, InvalidFree
//	memcg.go      accounting: ObjCgroup vectors, Cache.In, kept charges
//	sysfs.go      SysfsHooks: the views told of caches (slab_mutex)
//	validate.go   Cache.Validate
//	failslab.go   failslab fault injection
//	harden.go     InitOnAlloc, InitOnFree, RandomOrder
//	debug.go      debug caches (F, Z, P, U, T), reports, quarantine;
//	              debugspec.go: slab_debug; profile.go: the live-object
//	              profile and alloc_calls/free_calls
//	fast_*.go/.s  the assembly fast paths and their Go fallback
//
// # Locks, outermost first
//
//	mem_hotplug_lock (write, held by mem around the notifiers)
//	slab_mutex        Allocator.slabMutex: the cache list, names and
//	                  aliases, slab_nodes, each cache's refcount and the
//	                  creation of per-node structures
//	slab_flush_lock   Allocator.flushMu: one flusher owns every P's sheaves
//	&n->list_lock     cacheNode.listLock: partial list, the head-page
//	                  header fields (freelist, inuse, links, onList),
//	                  node counters
//	&barn->lock       cacheNode.barnLock: the barn's sheaf lists (leaf; never
//	                  held with list_lock)
//	slab_debug_lock   kmemCache.debugLock: a debug cache's slab set (leaf;
//	                  taken in newSlab and discardSlab, and by the
//	                  profile's walk with nothing else held)
//	slab_open_lock    Allocator.openMu: the prefilled sheaves and magazines
//	                  out (leaf; Close takes it inside slab_mutex)
//	zone lock (mem)   taken inside mem.AllocPages/FreePages, which slab
//	                  calls with no list_lock or barn lock held — but with
//	                  slab_mutex (and, for a flush, slab_flush_lock) held
//	                  when Destroy, Close and the hotplug callbacks free
//	                  empty slabs, so slab_mutex → zone lock is an edge
//
// memcg (package memcg, see its doc) sits outside these: its uncharges,
// and its charges below a limit, take no lock (per-P stocks, atomics), so
// slab uncharges with any of its locks held (putObjLocked, under
// list_lock) and charges with none held (a charge at a limit reclaims:
// memcg's locks, then slab's flusher). memcg's Drain holds cgroup_mutex
// and memcg_drain_mutex while slab's flusher (flushAccounted) takes
// slab_mutex, slab_flush_lock and list_lock: cgroup_mutex →
// memcg_drain_mutex → slab_mutex is the order.
//
// Cache creation, destruction and shrinking never take mem_hotplug_lock:
// per-node structures are created under slab_mutex for every node in
// slab_nodes and never freed, exactly as SLUB since 5.12.
//
// # The per-P protocol
//
// A P's sheaves (main, spare, remote) are touched only by a goroutine
// pinned to that P — or inside an assembly fast path, which cannot be
// preempted — that has seen Allocator.flushing == 0 in the same section. A flusher
// (shrink, destroy, offline, node events) takes slab_flush_lock, sets
// flushing, and waits one grace period (percpu.Synchronize: a
// stop-the-world cannot complete while anyone is pinned); from then on it
// owns every P's sheaves, including those of Ps that no longer exist
// because GOMAXPROCS was lowered. Slow paths that see flushing wait on the
// flush lock and retry; a sheaf a slow path carried unpinned across a flush
// (noticed by flushGen) goes back to the slabs instead of to a P.
//
// # Hotplug
//
// NODE_ADDING_FIRST_MEMORY: under slab_mutex every cache gets its
// structure for the node and the node joins slab_nodes (a cache created in
// the window between this and the node's N_MEMORY still gets one); a
// failure cancels the online with ENOMEM. MEM_GOING_OFFLINE and
// NODE_REMOVING_LAST_MEMORY: flush every sheaf and barn and free every
// empty slab, so free slab pages leave the block; slab pages with live
// objects stay, and mem fails the offline with EBUSY.
//
// # Invariants
//
//   - An object is in exactly one place: a user's hands (or a prefilled
//     sheaf), a P's sheaf, a barn sheaf, or its slab's freelist.
//   - A slab's inuse counts the objects not on its freelist; a slab with
//     inuse == 0 is on its node's partial list or being discarded.
//   - cacheNode.nrFree is the sum of free-list lengths; nrSlabs the slabs
//     of the node and nrObjs their slots (a slab of the fallback order,
//     hdrMin on every page, has minObjects); so objects-in-use = nrObjs -
//     nrFree.
//   - Every page of a slab carries the cache id, node and base while the
//     slab exists (FreePages zeroes them); a large kmalloc's head page
//     carries largeID, an id no cache has. A destroyed cache's id is
//     reused only once none of its slabs exists (Destroy requires it), so
//     no page can carry a stale id. One Allocator per System.
//   - A P's main and spare sheaves, and a barn's sheaves, hold objects of
//     one node: the sheaf's node (the P's, the barn's).
//   - A remote sheaf holds objects of one node (its node field) only.
//   - While a sheaf is a P's main sheaf, its count lives in the P's
//     pcpuSheaves.n (and its array in pcpuSheaves.objs); the sheaf's own
//     n is stale until takeMain writes it back. n == 0 and objs == nil
//     when the P has no main sheaf. Likewise a prefilled Sheaf handle's
//     n is authoritative until Refill or Return syncs it.
//   - A refused free (outside hotslab memory, not a slab page, not an
//     object start, another cache's object, destroyed handle, closed
//     allocator, double free seen on top of the sheaf it would join, at
//     the head of its slab's freelist, or twice in one FreeBulk) changes
//     nothing. A double free of an object freed longer ago is not seen.
package slab
