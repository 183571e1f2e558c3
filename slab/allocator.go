// The Allocator: the kernel's slab_caches list, slab_mutex, slab_nodes and
// the id table that maps a slab page's cache id to its cache.

package slab

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"

	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
)

// Lock classes, in lock order (outermost first). slab_mutex is taken
// inside mem_hotplug_lock by the hotplug notifiers.
var (
	slabMutexClass = lockdep.NewClass("slab_mutex")
	flushClass     = lockdep.NewClass("slab_flush_lock")
	listLockClass  = lockdep.NewClass("&n->list_lock")
	barnLockClass  = lockdep.NewClass("&barn->lock")
)

// Options configure an Allocator.
type Options struct {
	// OnInvalidFree is called with every refused free (pointer outside
	// hotslab memory, not a slab page, not an object start, wrong cache,
	// double free). The default panics with the description; the
	// allocator's state is intact either way.
	OnInvalidFree func(*InvalidFree)
	// Logger receives hotplug and lifecycle messages (default slog.Default).
	Logger *slog.Logger
}

// Allocator is a SLUB-style slab allocator over a mem.System: the
// kernel's slab_caches list, slab_mutex and slab_nodes, and the kmalloc
// caches.
type Allocator struct {
	sys *mem.System
	log *slog.Logger

	onInvalid func(*InvalidFree)

	// slabMutex protects caches, byName, slabNodes and every cache's
	// refcount and node array writes. Kernel: slab_mutex.
	slabMutex lockdep.Mutex
	caches    []*cache          // underlying caches, creation order
	byName    map[string]*Cache // every live handle (aliases included)
	slabNodes []bool            // nodes every cache has a structure for
	nextID    uint32            // next cache id; ids start at 1, never reused

	// table maps a cache id (kept in every slab page) to its cache, for
	// kfree and ksize. Copy-on-write under slab_mutex; read lock-free.
	table atomic.Pointer[[]*cache]

	// Per-P flush protocol: the owner P touches its sheaves only pinned
	// and after seeing flushing == 0; a flusher holds flushMu, sets
	// flushing, waits a grace period and then owns every P's sheaves.
	flushMu  lockdep.Mutex
	flushing atomic.Int32
	flushGen atomic.Uint64 // bumped by every flush

	// memNode[p] is the node whose objects P p caches: its own node if
	// it has memory, else the nearest that has. Written only while
	// flushing.
	memNode []atomic.Int32

	kmalloc kmallocCaches

	// test hook: fail per-node structure creation for a node.
	failNodeInit atomic.Int32 // node+1, 0 = off

	unregister []func()
	closed     bool
}

// New returns an allocator over sys with the kmalloc caches created and
// hotplug notifiers registered. Kernel: kmem_cache_init().
func New(sys *mem.System, opts *Options) (*Allocator, error) {
	if sys == nil {
		return nil, fmt.Errorf("slab: nil memory system: %w", syscall.EINVAL)
	}
	a := &Allocator{sys: sys, byName: make(map[string]*Cache), nextID: 1}
	a.table.Store(new([]*cache))
	if opts != nil {
		a.onInvalid = opts.OnInvalidFree
		a.log = opts.Logger
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.slabMutex.Init(slabMutexClass)
	a.flushMu.Init(flushClass)
	a.slabNodes = make([]bool, sys.NumNodes())
	a.memNode = make([]atomic.Int32, percpu.MaxProcs())
	a.unregister = append(a.unregister,
		sys.RegisterNodeNotifier("slab", 1, a.nodeCallback),
		sys.RegisterMemoryNotifier("slab", 1, a.memoryCallback))
	// The notifiers are in place: read the node states stably.
	sys.GetOnlineMems()
	a.slabMutex.Lock()
	for n := range a.slabNodes {
		a.slabNodes[n] = sys.NodeHasMemory(n)
	}
	a.computeMemNodes()
	a.slabMutex.Unlock()
	sys.PutOnlineMems()
	if err := a.createKmallocCaches(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close unregisters the allocator from the memory system. Caches must not
// be used afterwards; a Free is refused and reported, not served. Close
// the Allocator before its System: the free paths read the System's
// vmemmap, which System.Close unmaps.
func (a *Allocator) Close() {
	a.slabMutex.Lock()
	if a.closed {
		a.slabMutex.Unlock()
		return
	}
	a.closed = true
	// An empty range for every cache's free paths (hdrAt and the
	// assembly): any later free goes to the Go path, which refuses it
	// through the System (slabOf) instead of reading a vmemmap that
	// System.Close is about to unmap. After the grace period no fast
	// path is still using the old range.
	a.stopPcpu()
	for _, k := range a.caches {
		k.memSize = 0
	}
	a.startPcpu()
	a.slabMutex.Unlock()
	for _, u := range a.unregister {
		u()
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
		ci := CacheInfo{Name: k.name, UniqueID: k.uniqueID(), Mergeable: k.mergeable(), cache: k}
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
	UniqueID  string   // ":[flags-]%07u", the /sys/kernel/slab directory of a merged cache
	Aliases   []string // further names sharing the cache
	Mergeable bool
	cache     *cache
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
func (a *Allocator) publishTable(change func([]*cache) []*cache) {
	t := change(append([]*cache(nil), *a.table.Load()...))
	a.table.Store(&t)
}

// statUnpinned counts an event from code that runs unpinned (slow paths):
// an atomic add on a per-cache counter, exact whatever the P.
func (a *Allocator) statUnpinned(k *cache, s Stat) {
	atomic.AddUint64(&k.slowStat[s], 1)
}
