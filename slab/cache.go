// Caches: the user's handle (Cache), the underlying cache (kmemCache), its
// per-node part (cacheNode), their accessors and statistics.

package slab

import (
	"fmt"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
)

// Flags are cache creation flags (the kernel's SLAB_* flags).
type Flags uint32

const (
	// HWCacheAlign aligns objects to the cache line (SLAB_HWCACHE_ALIGN).
	HWCacheAlign Flags = 1 << iota
	// Account charges objects to the allocating memory cgroup
	// (SLAB_ACCOUNT).
	Account
	// ReclaimAccount counts the cache as reclaimable (SLAB_RECLAIM_ACCOUNT).
	ReclaimAccount
	// NoMerge keeps the cache from being merged (SLAB_NO_MERGE).
	NoMerge
	// ConsistencyChecks (F), RedZone (Z), Poison (P), StoreUser (U) and
	// Trace (T) are the debug flags (SLAB_CONSISTENCY_CHECKS,
	// SLAB_RED_ZONE, SLAB_POISON, SLAB_STORE_USER, SLAB_TRACE), also
	// set by Options.Debug's slab_debug spec. A debug cache is never
	// merged and leaves the per-P layers: every allocation and free goes
	// to its slab, checked (debug.go).
	ConsistencyChecks
	RedZone
	Poison
	StoreUser
	Trace

	debugFlags = ConsistencyChecks | RedZone | Poison | StoreUser | Trace
	validFlags = HWCacheAlign | Account | ReclaimAccount | NoMerge | debugFlags
	// Flags that must be equal for two caches to merge (SLAB_MERGE_SAME).
	mergeSame = Account | ReclaimAccount
)

// CacheOptions are the optional parameters of NewCache.
type CacheOptions struct {
	Align int   // power of two, at most a page; 0 = pointer alignment
	Flags Flags // HWCacheAlign, Account, ReclaimAccount, NoMerge
	// Ctor, if set, initialises each object once, when its slab is
	// created (not on every allocation). A cache with a constructor is
	// never merged.
	Ctor func(obj unsafe.Pointer)
}

// Cache is a handle on a slab cache: the name a user created. Several
// handles can share one underlying cache when they were merged.
type Cache struct {
	// fast is the cache the assembly fast paths use (fast_amd64.s): c,
	// or deadCache once the handle is destroyed, so that they need no
	// check of their own for it. Written by Destroy, which must not run
	// concurrently with other calls on the same handle.
	fast *kmemCache
	c    *kmemCache
	dead atomic.Bool // Destroy succeeded for this handle
	// open counts the prefilled sheaves and magazines taken through the
	// handle and not yet returned or closed: Destroy refuses while there
	// are any (they flush through the handle). An opener adds before it
	// looks at dead; Destroy sets dead before it looks at open, and
	// undoes it on failure — so one of them sees the other.
	open    atomic.Int64
	kmalloc bool // a kmalloc cache's own handle: permanent
	name    string
}

// acquire counts one more sheaf or magazine taken through the handle,
// unless it is destroyed or the allocator closed (then the error).
func (c *Cache) acquire() error {
	c.open.Add(1)
	if err := c.usable(); err != nil {
		c.open.Add(-1)
		return err
	}
	return nil
}

// kmemCache is an underlying kmemCache (the kernel's struct kmem_cache).
type kmemCache struct {
	// The fast paths' fields first, in the first two cache lines (read
	// by fast_amd64.s too): the range and vmemmap of the System (a copy:
	// validating a free costs no load of the Allocator or the System;
	// see hdrAt), the id and geometry, the per-P sheaves and the flush
	// word.
	memBase uintptr
	memSize uintptr
	// freeSize is memSize, or 0 for an accounted cache: the range the
	// inline free paths of Magazine and the prefilled Sheaf accept, so
	// that an accounted cache's frees into them take their slow paths,
	// which uncharge before keeping the object (their Alloc hands
	// objects out uncharged).
	freeSize uintptr
	vmemmap  unsafe.Pointer // the Page of memBase
	id       uint32         // index in Allocator.table, kept in every slab page
	sizeMask uintptr        // size-1 when size is a power of two, else 0
	// fastMask is sizeMask for a power-of-two size, else all ones (the
	// assembly's mask test then sends every offset to its reciprocal
	// check). fastProcs is len(pcpu) while the assembly fast paths may
	// use the per-P sheaves, else 0, so every P id is out of range for
	// them: when the runtime offsets disagree (fastPath), while a flusher
	// owns the sheaves (it is the assembly's flushing test: set to 0
	// before the grace period, restored after), and after Close.
	// Written only by a flusher or at creation.
	fastMask  uintptr
	fastProcs int
	// allocProcs is fastProcs for the assembly's alloc path, 0 for an
	// accounted cache: its plain allocations take the Go path, which
	// uncharges an object its last user left charged (memcg.go).
	// groupProcs is the opposite, for the assembly's GroupCache reuse:
	// fastProcs for an accounted cache, else 0.
	allocProcs int
	groupProcs int
	// freeProcs is fastProcs for the assembly's free path, 0 when frees
	// must zero (initFree).
	freeProcs int
	sizeShift uint    // log2(size) when size is a power of two
	slabBytes uintptr // objects*size
	recip     uint64
	objects   int // per slab
	size      int // slot size
	// minObjects per slab of minOrder, the fallback geometry (hdrMin),
	// in minSlabBytes.
	minObjects   int
	minSlabBytes uintptr
	pcpu         []pcpuSheaves
	flushing     atomic.Int32   // non-zero while a flusher owns the per-P sheaves
	procNode     []atomic.Int32 // a.memNode

	a        *Allocator
	name     string   // first name
	names    []string // every live name, first one first (slab_mutex)
	refcount int      // live handles (slab_mutex)
	// aliases is len(names)-1, readable without slab_mutex (the sysfs
	// aliases attribute must not take it).
	aliases    atomic.Int32
	objectSize atomic.Int32 // the largest size of its names (raised by merges)
	uniqueID   string       // the /sys/kernel/slab directory name
	align      int
	flags      Flags
	ctor       func(unsafe.Pointer)
	order      int
	minOrder   int // the fallback geometry's order (newSlab)
	minPartial int
	sheafCap   int
	random     uintptr // freelist pointer hardening
	fpOffset   uintptr // where the free pointer lives in a free object

	// acct: an Account cache. Its slabs end with a vector of one uint32
	// per object, the id of the memcg.ObjCgroup the object is charged
	// to (0: not charged), at objectsOf*size from the slab's base
	// (memcg.go). chargeSize is what one object charges: its slot and
	// its vector entry.
	acct       bool
	chargeSize int64
	// failslab: the cache is chosen by failslab's cache-filter.
	failslab atomic.Bool
	// initAlloc, initFree: zero objects at allocation, at free
	// (Options.InitOnAlloc/InitOnFree; never for a constructor cache).
	// perm, permMin: the shuffled object order of new slabs of either
	// geometry (Options.RandomOrder), nil for the natural order.
	initAlloc, initFree bool
	perm, permMin       []uint32
	// debug: the cache's debug flags (debug.go); metaOff: where an
	// object's metadata starts (its state word / red zone, then the free
	// pointer, then the tracks); debugSlabs (debugLock): the slabs, for
	// alloc_calls and the profile; quarantined: damaged objects kept out
	// of circulation.
	debug       Flags
	metaOff     uintptr
	debugLock   lockdep.Mutex
	debugSlabs  map[uintptr]struct{}
	quarantined atomic.Int64

	flushGen atomic.Uint64               // bumped by every flush of k
	slowStat [NumStats]uint64            // slow-path events, atomic
	nodes    []atomic.Pointer[cacheNode] // never freed once set
}

// cacheNode is a cache's per-node part (struct kmem_cache_node) with its
// barn. Created when the node joins slab_nodes, never freed.
type cacheNode struct {
	node     int
	listLock lockdep.Mutex // partial list and counters
	partial  slabList
	nrSlabs  int64
	nrObjs   int64 // object slots in this node's slabs
	nrFree   int64 // free slots in this node's slabs

	barnLock lockdep.Mutex
	full     sheafStack
	empty    sheafStack
}

// mergeID is the kernel's create_unique_id(): ":[flags-]%07u".
func (k *kmemCache) mergeID() string {
	var b strings.Builder
	b.WriteByte(':')
	if k.flags&ReclaimAccount != 0 {
		b.WriteByte('a')
	}
	if k.flags&Account != 0 {
		b.WriteByte('A')
	}
	if k.flags&ConsistencyChecks != 0 {
		b.WriteByte('F')
	}
	if b.Len() > 1 {
		b.WriteByte('-')
	}
	fmt.Fprintf(&b, "%07d", k.size)
	return b.String()
}

func (k *kmemCache) mergeable() bool {
	return k.ctor == nil && k.flags&(NoMerge|debugFlags) == 0
}

// Name returns the handle's name.
func (c *Cache) Name() string { return c.name }

// ObjectSize returns the object size of the underlying cache: the largest
// size any of its names was created with (what Zalloc clears, AllocBytes
// spans and Ksize reports).
func (c *Cache) ObjectSize() int { return int(c.c.objectSize.Load()) }

// Size returns the slot size of the underlying cache: the object size
// rounded up to the alignment (plus the free pointer for a cache with a
// constructor).
func (c *Cache) Size() int { return c.c.size }

// UniqueID returns the name of the underlying cache's /sys/kernel/slab
// directory: ":[flags-]%07u" for a mergeable cache, the cache's own name
// for an unmergeable one. Unique among the Allocator's live caches.
func (c *Cache) UniqueID() string { return c.c.uniqueID }

// Merged reports whether the handle shares its cache with other names.
func (c *Cache) Merged() bool {
	c.c.a.slabMutex.Lock()
	defer c.c.a.slabMutex.Unlock()
	return len(c.c.names) > 1
}

// Stats returns a snapshot of the underlying cache's statistics.
func (c *Cache) Stats() CacheStats { return c.c.stats() }

// stats takes no slab_mutex: the sysfs attributes that call it run under
// active references that cache destruction drains under slab_mutex.
func (k *kmemCache) stats() CacheStats {
	s := CacheStats{Name: k.name, ObjectSize: int(k.objectSize.Load()), Size: k.size, Align: k.align,
		ObjsPerSlab: k.objects, Order: k.order, SheafCap: k.sheafCap, Aliases: int(k.aliases.Load())}
	for i := range s.Counters {
		s.Counters[i] = atomic.LoadUint64(&k.slowStat[i])
		for p := range k.pcpu {
			s.Counters[i] += statLoad(&k.pcpu[p].stat[i])
		}
	}
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		cn.listLock.Lock()
		s.Nodes = append(s.Nodes, NodeStats{Node: n, Slabs: cn.nrSlabs,
			Objects: cn.nrObjs, Partial: int64(cn.partial.n), Free: cn.nrFree})
		cn.listLock.Unlock()
	}
	return s
}
