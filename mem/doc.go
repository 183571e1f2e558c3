// Package mem is the memory everything in hotslab lives in, organised and
// hot-plugged like a machine's: NUMA nodes, memory blocks, zones, a buddy
// page allocator with per-P page lists, and the kernel's memory-hotplug
// operations and notifier chains (mm/memory_hotplug.c, mm/page_alloc.c,
// drivers/base/memory.c).
//
// mem requires Linux: it reserves and maps blocks with mmap and mprotect,
// gives their memory back with MADV_DONTNEED and punched holes, and backs
// them with anonymous memory, a memfd or a file. Every file of the package
// is built on Linux only; elsewhere the build fails with "hotslab requires
// Linux" (unsupported.go).
//
// # What it owns
//
//   - One reserved PROT_NONE, MAP_NORESERVE virtual range ("physical"
//     address space), MaxBlocks*BlockSize bytes. Block i lives at
//     Base()+i*BlockSize: it is mapped there with MAP_FIXED (PROT_NONE) on
//     hot-add, made read-write on online, discarded (MADV_DONTNEED, and a
//     punched hole for memfd/file backing) and made PROT_NONE again on
//     offline, and put back into the reservation on remove. So address →
//     Page is arithmetic (PageOf: one atomic presence load).
//   - Blocks (struct memory_block + the struct pages of its range): node,
//     state (offline, going-offline, online), zone, isolation flag. The
//     range holds fewer than 2^32 pages (under 16 TiB).
//   - struct page (Page), one per page of every present block, in a
//     virtually contiguous array off the Go heap, the kernel's
//     SPARSEMEM_VMEMMAP: a second, read-only MAP_NORESERVE reservation
//     of one Page per page of the range (reads of a never-added block's
//     part see the kernel's shared zero page: no memory, no fault), whose
//     part for a block is made read-write on hot-add and discarded
//     (MADV_DONTNEED: zero-filled) and made read-only again on
//     hot-remove. So PageOf(addr) is vmemmap[(addr-Base)>>PageShift]
//     after one atomic presence load, PageMap.PageAt is the same without
//     the presence load (a Page of an absent block reads as all zeros,
//     never faults), and the collector never sees a Page. Page holds no
//     pointer: the free-list links are page frame numbers (pfn =
//     (addr-Base)>>PageShift, nilPFN for none), a Page's block follows
//     from its place in the vmemmap, the owner's metadata are four Owner
//     words (slab keeps its slab header there), and Migrators are in a
//     per-System side table (sync.Map by address), with an entry whenever
//     the head's state has the pgMigrator bit (see Invariants). (A first version kept a
//     Go slice of Pages per block with one pointer each: a System with
//     2 GiB of blocks added 512K scanned words to every GC cycle.)
//   - Per node and zone (Normal, Movable) a buddy allocator of 4 KiB
//     pages, orders 0..MaxOrder, never merging across blocks, whose large
//     free chunks give their memory back to the OS and stay free (see
//     Free page reporting).
//   - Per P and per (node, zone) a stack of free order-0 pages.
//   - The memory and node notifier chains, the node masks N_MEMORY and
//     N_NORMAL_MEMORY, and the auto-online policy.
//   - The background page reporter: one goroutine per System, from New
//     to Close.
//
// # Locks, outermost first
//
//	device_hotplug_lock    (lockdep.Mutex)  every Add/Probe/Online/Offline/Remove, New, Close
//	mem_block_device_lock  (lockdep.Mutex, one per block) Online/Offline/Remove of that block
//	mem_hotplug_lock       (lockdep.PerPRWSem) write: the operations (blocks, zones, node state); read: GetOnlineMems
//	memory_chain.rwsem / node_chain.rwsem (lockdep.RWMutex) read while calling, write to (un)register
//	  … callers' locks taken in callbacks (slab_mutex → list_lock) …
//	pcp_drain_mutex        (lockdep.Mutex)  one drainer of the per-P lists at a time (Offline, Close, DrainPages, ReportFreePages)
//	page_reporting_mutex   (lockdep.Mutex)  one batch of the page reporter out at a time; a failed allocation waits on it
//	zone_lock              (lockdep.Mutex, one per zone) a leaf: free lists, buddy states, isolation
//
// The two chains' locks never nest: an operation calls one chain, then
// the other. Nor do pcp_drain_mutex and page_reporting_mutex:
// ReportFreePages drains the per-P lists before it reports, and under
// page_reporting_mutex only zone locks are taken. page_reporting_mutex is
// taken by the page reporter (the background goroutine holds no other
// lock; ReportFreePages may be called under callers' locks and from
// callbacks), by Close (under device_hotplug_lock) and by an allocation
// that found nothing while a batch was out (allocWait, on AllocPages'
// failure path and in a migration under mem_hotplug_lock) — so never
// allocate under it.
//
// The zone lock is a leaf: nothing is taken under it, and no two zone
// locks nest, so AllocPages/FreePages may be called under any lock above
// (from notifier callbacks, under slab_mutex). AddMemory and Probe drop
// mem_hotplug_lock before auto-onlining (which takes the block lock and
// mem_hotplug_lock again), as the kernel's add_memory does. The hot path —
// AllocPages, FreePages, PageOf, PageNode, BlockOf — never takes
// mem_hotplug_lock or device_hotplug_lock. Migrator.MigratePage runs with
// device_hotplug_lock, the block lock and mem_hotplug_lock held, never a
// zone lock.
//
// # Per-P page lists
//
// A P's list is written only by a goroutine pinned to that P
// (percpu.Pin), and only after it has read its P's stolen word as zero in
// the same pinned section (Stats reads the counts unpinned, approximately): the order-0 alloc+free pair is two pins, a few
// plain loads and stores, no lock and no atomic read-modify-write.
// Refill and spill move pcpBatch pages to or from the zone's buddy
// allocator unpinned, under the zone lock. An order-0 free of a page with
// a Migrator takes the slow path, which drops the side-table entry
// unpinned.
//
// To drain every P (offline; DrainPages) the drainer sets stolen on each
// P, then waits for a grace period (percpu.Synchronize, a stop-the-world):
// every pinned section that may have missed the flag has then ended, so
// the drainer owns all lists; it empties them, clears the flags and frees
// the pages under the zone locks. A P that sees stolen takes the buddy
// allocator directly meanwhile. Under the race detector the list words are
// accessed with sync/atomic (the detector does not see the grace period);
// TestStressHotplug runs this under -race.
//
// # Isolation
//
// Offline sets the block isolated under its zone lock and takes its free
// chunks off the free lists; a free into an isolated block merges there
// but stays off the lists ("free and isolated"). The per-P paths check the
// block's isolated flag inside their pinned section (the allocation fast
// path leaves a page of an isolated block on the list and the slow path's
// pop sends it back to the buddy allocator; neither a free nor a refill
// ever pushes a page of an isolated block), so after isolate + drain no
// page of the block is or can be on a per-P list. Offline then loops until all the
// block's pages are in the buddy allocator: allocations with a Migrator
// are migrated, GFPMovable ones are waited for, any other allocated page
// fails the offline with EBUSY — after MEM_GOING_OFFLINE, so that a
// callback (slab) may free its pages first.
//
// # Free page reporting
//
// Memory goes back to the OS without offlining a block: free buddy chunks
// of the reporting order and up (Config.ReportingOrder,
// SetReportingOrder; default DefaultReportingOrder, 9 = 2 MiB, or the
// largest order of a block if that is smaller) are reported — their
// memory given back with MADV_DONTNEED (anonymous backing) or a punched
// hole (fallocate PUNCH_HOLE|KEEP_SIZE: memfd and file blocks are
// MAP_SHARED, where MADV_DONTNEED would leave the pages in the file) —
// and stay in the buddy allocator, marked reported (pgReported on the
// head; the Pages stay). Reported chunks sit on a second free list per
// order, which allocations take from only after the unreported one, so
// resident memory is reused first; reused, a reported chunk faults back
// in as zeros, and a GFPZero allocation carved from one is not cleared
// (so do not write to memory after freeing it). A chunk split off a
// reported one stays reported; a merged chunk is reported only if all its
// parts were (a freed chunk is not). Memory an online brings in that is
// known to read as zeros — fresh anonymous or memfd memory, or memory the
// block's last offline discarded — is reported from the start (a file's
// fresh blocks may hold old data). ZoneStats.Reported counts the
// reported free pages, Stats.ReportedBytes the bytes given back.
// Kernel: mm/page_reporting.c (PageReported, page_reporting_order).
//
// Who reports: ReportFreePages, synchronously (it drains the per-P lists
// first, so that freed order-0 pages merge; it returns the bytes given
// back and stops between batches when its context is done); and the
// background reporter. A free that leaves an unreported chunk of the
// reporting order or more on a free list (or a cancelled offline putting
// one back) requests a pass; the reporter waits the delay
// (Config.ReportingDelay, SetReportingDelay; default 2 s; negative: off,
// the request waits), then reports every unreported chunk of the
// reporting order and up; frees during the pass request the next one.
// Kernel: page_reporting_notify_free() and the delayed work.
//
// A pass goes zone by zone and order by order in batches of at most 32
// chunks, each under page_reporting_mutex: with the zone lock it takes
// the chunks off the unreported list (state pgReporting: no allocation,
// merge or isolation touches them), drops the zone lock for the system
// calls, retakes it and frees them back marked reported, merging as a
// free does. While out the chunks count as free in Stats but not in
// their block's nrFree, so an Offline that isolated the block meanwhile
// waits for them, and they come back free and isolated; the chunks of an
// isolated block are on no list, so a pass never takes them. An
// allocation that finds nothing free while a batch is out (or one starts
// or ends during its attempt) waits for page_reporting_mutex and tries
// again instead of failing with ENOMEM. A failed system call puts its
// chunk back unreported and ends the pass with the error; the background
// reporter logs it and turns itself off (ReportingDelay reads negative).
//
// # Invariants
//
//   - A page is in exactly one of: a zone free list (head of a free chunk
//     of a non-isolated block), a free chunk of an isolated block, one
//     P's list (order 0), an allocation — or, briefly, a batch a refill
//     or spill carries between a P's list and the buddy allocator, or a
//     chunk of a reporting batch (pgReporting). Only heads have a
//     non-zero state (kind, order, GFPMovable, pgMigrator, pgReported);
//     tails read pgNone.
//   - Page has no pointer (TestPagePointerFree). A free
//     head on a zone list links by pfn to heads of the same zone, order
//     and reportedness (zone lock); a pfn on a list is in a present,
//     online block.
//   - A reported free chunk's memory reads as zeros and is not resident
//     (checked with mincore by TestStressReporting) — unless the
//     kernel's khugepaged, with transparent huge pages "always", collapsed
//     it into a huge page again.
//   - pgMigrator is set only on an allocation's head, after its entry is
//     stored in the side table, and cleared before the entry is
//     deleted. A free or migration that claims a head whose state had
//     the bit deletes the entry before the page can be reallocated, so
//     a Migrator never outlives its allocation (TestMigratorSideTable).
//   - For every zone, at rest (lists drained, no allocation live):
//     free == managed == pages of its online blocks (checked by the
//     tests), and reported <= free.
//   - An offline block has no page in any allocator, no zone, and is
//     isolated; its memory is PROT_NONE and not resident.
//   - Node masks change only under mem_hotplug_lock (write), so they are
//     stable under GetOnlineMems.
//   - Errors wrap a syscall.Errno: EINVAL (bad id, size, zone, order,
//     transition — and nothing changes), EBUSY, EEXIST, ENOMEM, EINTR, or
//     the errno a notifier returned (EPERM if it returned none).
//
// # Notifier protocol
//
// Online: NODE_ADDING_FIRST_MEMORY (first memory of the node) →
// MEM_GOING_ONLINE → pages to the buddy allocator (isolated) → node masks
// → un-isolate → NODE_ADDED_FIRST_MEMORY → MEM_ONLINE; a failing GOING
// event sends MEM_CANCEL_ONLINE and NODE_CANCEL_ADDING_FIRST_MEMORY to
// every subscriber. Offline: drain → isolate → drain → (last memory)
// NODE_REMOVING_LAST_MEMORY → MEM_GOING_OFFLINE → migrate/retry loop →
// pages out of the zone, memory back to the OS → node masks →
// NODE_REMOVED_LAST_MEMORY → MEM_OFFLINE; on failure un-isolate,
// MEM_CANCEL_OFFLINE and NODE_CANCEL_REMOVING_LAST_MEMORY to every
// subscriber. Higher priority runs first.
//
// Scenario tests in testdata/ (cockroachdb/datadriven) show each
// protocol step; run `go test ./mem -run DataDriven -rewrite` after an
// intended change.
package mem
