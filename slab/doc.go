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
// An object freed on a P of another node (a remote free) goes into the P's
// remote sheaf; a full remote sheaf goes whole to its node's barn (or, if
// that is full, its objects back to their slabs), so main and spare
// sheaves hold local objects only.
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
// cacheFreeGo) for anything but the common case; elsewhere, and in race
// builds, the Go path is the whole of it.
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
//	zone lock (mem)   taken inside mem.AllocPages/FreePages, which slab calls
//	                  with no slab lock held
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
//     of the node; so objects-in-use = nrSlabs*objects - nrFree.
//   - Every page of a slab carries the cache id, node and base while the
//     slab exists (FreePages zeroes them); a large kmalloc's head page
//     carries largeID, an id no cache has. Cache ids are never reused.
//   - A remote sheaf holds objects of one node (its node field) only.
//   - While a sheaf is a P's main sheaf, its count lives in the P's
//     pcpuSheaves.n (and its array in pcpuSheaves.objs); the sheaf's own
//     n is stale until takeMain writes it back. n == 0 and objs == nil
//     when the P has no main sheaf. Likewise a prefilled Sheaf handle's
//     n is authoritative until Refill or Return syncs it.
//   - A refused free (outside hotslab memory, not a slab page, not an
//     object start, another cache's object, double free seen at the sheaf
//     top or on the slab) changes nothing.
package slab
