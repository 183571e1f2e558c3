// The Allocator: the kernel's slab_caches list, slab_mutex, slab_nodes and
// the id table that maps a slab page's cache id to its cache.

package slab

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hotslab/hotslab/fault"
	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
)

// Lock classes, in lock order (outermost first). slab_mutex is taken
// inside mem_hotplug_lock by the hotplug notifiers.
var (
	slabMutexClass = lockdep.NewClass("slab_mutex")
	flushClass     = lockdep.NewClass("slab_flush_lock")
	listLockClass  = lockdep.NewClass("&n->list_lock")
	barnLockClass  = lockdep.NewClass("&barn->lock")
	openClass      = lockdep.NewClass("slab_open_lock")
)

// detacher is a prefilled Sheaf or a Magazine: Close empties it.
type detacher interface{ detach() }

// registerOpen records d as out, unless the allocator is closed.
func (a *Allocator) registerOpen(d detacher) bool {
	a.openMu.Lock()
	defer a.openMu.Unlock()
	if a.closed.Load() {
		return false
	}
	a.open[d] = struct{}{}
	return true
}

// unregisterOpen forgets d (returned or closed).
func (a *Allocator) unregisterOpen(d detacher) {
	a.openMu.Lock()
	delete(a.open, d)
	a.openMu.Unlock()
}

// Options configure an Allocator.
type Options struct {
	// OnInvalidFree is called with every refused free (pointer outside
	// hotslab memory, not a slab page, not an object start, wrong cache,
	// destroyed handle, closed allocator, double free). The default
	// panics with the description; the allocator's state is intact
	// either way.
	OnInvalidFree func(*InvalidFree)
	// Logger receives hotplug and lifecycle messages (default slog.Default).
	Logger *slog.Logger
	// InitOnAlloc zeroes every object as it is allocated, over its
	// object size, whatever the path (the kernel's init_on_alloc=1): no
	// allocation sees an earlier user's data. InitOnFree zeroes every
	// object as it is freed (init_on_free=1): no freed data lingers. Both
	// leave constructor caches alone (their objects keep the
	// constructor's state, as the kernel's do) and take every cache's
	// allocations (InitOnAlloc) or frees (InitOnFree) off the assembly
	// paths; their cost per pair is in docs/BENCHMARKS.md. Off by
	// default.
	InitOnAlloc, InitOnFree bool
	// RandomOrder shuffles the order in which a new slab hands out its
	// objects (the kernel's CONFIG_SLAB_FREELIST_RANDOM), from a
	// permutation computed per cache at creation, starting at a random
	// point per slab: heap-layout attacks cannot predict neighbours.
	// It costs only at slab creation. Off by default.
	RandomOrder bool
	// Debug is a slab_debug spec (ParseDebugSpec: "FZPU",
	// "P,kmalloc-64;U,dentry*"): the debug flags it gives a cache are
	// added to the cache's own at creation. Empty: the environment's
	// HOTSLAB_SLAB_DEBUG, if set. A bad spec fails New with ErrInvalid.
	Debug string
	// OnDebugReport receives every problem a debug cache finds (default:
	// the report's text is logged at Error level).
	OnDebugReport func(*DebugReport)
}

// Allocator is a SLUB-style slab allocator over a mem.System: the
// kernel's slab_caches list, slab_mutex and slab_nodes, and the kmalloc
// caches. A System has at most one Allocator at a time.
type Allocator struct {
	sys *mem.System
	log *slog.Logger

	onInvalid func(*InvalidFree)
	// memcg charges accounted allocations (memcg.go).
	memcg *memcg.Controller
	// sysfs (slab_mutex) is told of caches and names (sysfs.go).
	sysfs SysfsHooks
	// The hardening options (Options), fixed at New.
	initOnAlloc, initOnFree, randomOrder bool
	// The debug spec's rules and the report hook (debugspec.go).
	debugRules []DebugRule
	onDebug    func(*DebugReport)
	// failslab and its cache-filter (failslab.go).
	failslab       *fault.Attr
	failslabFilter atomic.Bool

	// slabMutex protects caches, byName, slabNodes, nextID, freeIDs and
	// every cache's refcount, names and node array writes. Kernel:
	// slab_mutex.
	slabMutex lockdep.Mutex
	caches    []*kmemCache      // underlying caches, creation order
	byName    map[string]*Cache // every live handle (aliases included)
	slabNodes []bool            // nodes every cache has a structure for
	nextID    uint32            // next new cache id; ids start at 1
	freeIDs   []uint32          // ids of destroyed caches, for reuse

	// table maps a cache id (kept in every slab page) to its cache, for
	// kfree and ksize. Copy-on-write under slab_mutex; read lock-free.
	table atomic.Pointer[[]*kmemCache]

	// Per-P flush protocol: the owner P touches a cache's sheaves only
	// pinned and after seeing the cache's flushing word clear; a flusher
	// holds flushMu, sets the flushing words of the caches it flushes,
	// waits a grace period and then owns their sheaves on every P.
	flushMu lockdep.Mutex

	// procNode[p] is the node whose objects P p caches: its own node if
	// it has memory, else the nearest that has. Written only by a
	// flusher that empties every P's sheaves in the same flush.
	procNode []atomic.Int32

	kmalloc kmallocCaches

	// test hook: fail per-node structure creation for a node.
	failNodeInit atomic.Int32 // node+1, 0 = off

	// openMu guards open: the prefilled sheaves and magazines out, which
	// Close empties. A leaf lock, taken inside slab_mutex by Close.
	openMu lockdep.Mutex
	open   map[detacher]struct{}

	unregister []func()
	closed     atomic.Bool // set once by Close (under slab_mutex)
}

// owners maps each mem.System to its Allocator: the pages' slab headers
// carry cache ids that only one Allocator can interpret.
var owners sync.Map // *mem.System → *Allocator

// New returns an allocator over sys with the kmalloc caches created and
// hotplug notifiers registered. A System that already has an Allocator
// is refused with an error wrapping EBUSY (Close the other one first).
// Kernel: kmem_cache_init().
func New(sys *mem.System, opts *Options) (*Allocator, error) {
	if sys == nil {
		return nil, fmt.Errorf("slab: nil memory system: %w", syscall.EINVAL)
	}
	a := &Allocator{sys: sys, byName: make(map[string]*Cache), nextID: 1, open: make(map[detacher]struct{})}
	if _, taken := owners.LoadOrStore(sys, a); taken {
		return nil, fmt.Errorf("slab: the memory system already has an allocator (close it first): %w", syscall.EBUSY)
	}
	a.table.Store(new([]*kmemCache))
	a.memcg = memcg.New()
	a.memcg.SetFlusher(a.flushAccounted)
	a.memcg.SetNodes(func() []int {
		var nodes []int
		for n := range sys.NumNodes() {
			if sys.NodeHasMemory(n) {
				nodes = append(nodes, n)
			}
		}
		return nodes
	})
	if opts != nil {
		a.onInvalid = opts.OnInvalidFree
		a.log = opts.Logger
		a.initOnAlloc, a.initOnFree, a.randomOrder = opts.InitOnAlloc, opts.InitOnFree, opts.RandomOrder
		a.onDebug = opts.OnDebugReport
	}
	rules, err := ParseDebugSpec(debugSpec(opts))
	if err != nil {
		owners.Delete(sys)
		return nil, err
	}
	a.debugRules = rules
	if a.log == nil {
		a.log = slog.Default()
	}
	a.failslab = fault.New("failslab", a.log)
	a.failslab.OnChange(a.failslabChanged)
	a.slabMutex.Init(slabMutexClass)
	a.flushMu.Init(flushClass)
	a.openMu.Init(openClass)
	a.slabNodes = make([]bool, sys.NumNodes())
	a.procNode = make([]atomic.Int32, percpu.MaxProcs())
	a.unregister = append(a.unregister,
		sys.RegisterNodeNotifier("slab", 1, a.nodeCallback),
		sys.RegisterMemoryNotifier("slab", 1, a.memoryCallback))
	// The notifiers are in place: read the node states stably.
	sys.GetOnlineMems()
	a.slabMutex.Lock()
	for n := range a.slabNodes {
		a.slabNodes[n] = sys.NodeHasMemory(n)
	}
	a.computeProcNodes()
	a.slabMutex.Unlock()
	sys.PutOnlineMems()
	if err := a.createKmallocCaches(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close gives everything the allocator holds back to the page allocator:
// every P's sheaves and every barn are emptied and every slab and every
// large kmalloc allocation is freed — objects still allocated included
// (their number is logged as a warning; using them afterwards is a bug) —
// so every block can go offline afterwards and the System can take a new
// Allocator. The notifiers are unregistered. Afterwards allocations fail
// with ErrClosed and frees are refused and reported. Close must not run
// concurrently with other calls on the allocator; a second Close does
// nothing. Close the Allocator before its System: the free paths read
// the System's vmemmap, which System.Close unmaps.
func (a *Allocator) Close() {
	a.slabMutex.Lock()
	if a.closed.Load() {
		a.slabMutex.Unlock()
		return
	}
	a.closed.Store(true)
	// An empty range for every cache's free paths (hdrAt and the
	// assembly): any later free goes to the Go path, which refuses it.
	// After the grace period no fast path is still using the old range.
	a.beginFlush()
	for _, k := range a.caches {
		k.flushPcpuLocked()
		k.memSize, k.freeSize = 0, 0
	}
	a.endFlush()
	a.openMu.Lock()
	for d := range a.open {
		d.detach()
	}
	clear(a.open)
	a.openMu.Unlock()
	var live int64
	for _, k := range a.caches {
		k.flushBarns()
		live += k.reset()
	}
	live += a.freeAllPages()
	a.slabMutex.Unlock()
	if live > 0 {
		a.log.Warn("slab: allocator closed with objects still allocated; their memory is freed", "objects", live)
	}
	for _, u := range a.unregister {
		u()
	}
	owners.CompareAndDelete(a.sys, a)
}

// reset forgets every slab of k (Close frees their pages) and returns the
// number of objects that were still allocated.
func (k *kmemCache) reset() (live int64) {
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		cn.listLock.Lock()
		live += cn.nrObjs - cn.nrFree
		cn.partial = slabList{head: nilPFN}
		cn.nrSlabs, cn.nrObjs, cn.nrFree = 0, 0, 0
		cn.listLock.Unlock()
	}
	return live
}

// freeAllPages frees every slab of every cache of a and every large
// kmalloc allocation, found by walking the struct pages of every present
// block, and returns the number of large allocations freed. Called by
// Close with slab_mutex held, after reset.
func (a *Allocator) freeAllPages() (large int64) {
	a.eachSlabHead(false, func(pg *mem.Page, h *slabHdr, addr uintptr) {
		order := pg.Order()
		if h.flags&hdrLarge != 0 {
			large++
			a.unchargeLarge(pg, h)
		} else if k := a.cacheOf(h.cache); k != nil {
			order = k.orderOf(h)
			k.unchargeSlab(h)
			a.statUnpinned(k, FreeSlab)
		} else {
			return
		}
		if err := a.sys.FreePages(addr, order); err != nil {
			a.log.Error("slab: close: freeing pages", "addr", addr, "err", err)
		}
	})
	return large
}

// eachSlabHead calls fn with the head page, header and address of every
// slab and large kmalloc allocation in the system's present blocks (only
// the online ones if online), found by walking their struct pages.
func (a *Allocator) eachSlabHead(online bool, fn func(pg *mem.Page, h *slabHdr, addr uintptr)) {
	sys := a.sys
	for _, b := range sys.Blocks() {
		if online && b.State != mem.BlockOnline {
			continue
		}
		start := sys.Base() + uintptr(b.PhysAddr)
		for addr := start; addr < start+uintptr(sys.BlockSize()); addr += mem.PageSize {
			pg := sys.PageOf(addr)
			if pg == nil {
				break
			}
			if h := hdr(pg); h.cache != 0 && h.base == addr {
				fn(pg, h, addr)
			}
		}
	}
}

// System returns the memory system the allocator draws pages from.
func (a *Allocator) System() *mem.System { return a.sys }

// Caches returns a snapshot of every cache in creation order, one entry
// per underlying cache, with its alias names.
func (a *Allocator) Caches() []CacheInfo {
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	out := make([]CacheInfo, 0, len(a.caches))
	for _, k := range a.caches {
		ci := CacheInfo{Name: k.name, UniqueID: k.uniqueID, Mergeable: k.mergeable(), cache: k}
		for _, n := range k.names {
			if n != k.name {
				ci.Aliases = append(ci.Aliases, n)
			}
		}
		out = append(out, ci)
	}
	return out
}

// CacheInfo describes one underlying cache.
type CacheInfo struct {
	Name      string   // first name
	UniqueID  string   // the /sys/kernel/slab directory (see Cache.UniqueID)
	Aliases   []string // further names sharing the cache
	Mergeable bool
	cache     *kmemCache
}

// Stats returns the cache's statistics.
func (ci *CacheInfo) Stats() CacheStats { return ci.cache.stats() }

// Lookup returns the live cache handle of that name.
func (a *Allocator) Lookup(name string) (*Cache, bool) {
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	c, ok := a.byName[name]
	return c, ok
}

// publishTable replaces the cache table with change applied to a copy of
// it. Called with slab_mutex held.
func (a *Allocator) publishTable(change func([]*kmemCache) []*kmemCache) {
	t := change(append([]*kmemCache(nil), *a.table.Load()...))
	a.table.Store(&t)
}

// statUnpinned counts an event from code that runs unpinned (slow paths):
// an atomic add on a per-cache counter, exact whatever the P.
func (a *Allocator) statUnpinned(k *kmemCache, s Stat) {
	atomic.AddUint64(&k.slowStat[s], 1)
}
