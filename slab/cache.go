package slab

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
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
	// ConsistencyChecks, RedZone, Poison and StoreUser are the debug
	// flags (SLAB_CONSISTENCY_CHECKS, SLAB_RED_ZONE, SLAB_POISON,
	// SLAB_STORE_USER). They make a cache unmergeable; their checks are
	// not implemented yet and creating a cache with them fails.
	ConsistencyChecks
	RedZone
	Poison
	StoreUser

	debugFlags = ConsistencyChecks | RedZone | Poison | StoreUser
	validFlags = HWCacheAlign | Account | ReclaimAccount | NoMerge | debugFlags
	// Flags that must be equal for two caches to merge (SLAB_MERGE_SAME).
	mergeSame = Account | ReclaimAccount
)

const (
	// MaxSize is the largest object a cache can hold (KMALLOC_MAX_CACHE_SIZE
	// is 8 KiB; dedicated caches may hold up to an order-3 slab).
	MaxSize = 8 << mem.PageShift
	// MinAlign is the smallest object alignment (a pointer).
	MinAlign     = 8
	maxSlabOrder = 3
	cacheLine    = 64
	maxBarnFull  = 10
	maxBarnEmpty = 10
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
	name string
	c    *cache
	dead atomic.Bool
}

// cache is an underlying cache (the kernel's struct kmem_cache).
type cache struct {
	// The fast paths' fields first, in the first two cache lines (read
	// by fast_amd64.s too): the range and vmemmap of the System (a copy:
	// validating a free costs no load of the Allocator or the System;
	// see hdrAt), the id and geometry, the per-P sheaves and the flush
	// word.
	memBase   uintptr
	memSize   uintptr
	vmemmap   unsafe.Pointer // the Page of memBase
	id        uint32         // index in Allocator.table, kept in every slab page
	sizeMask  uintptr        // size-1 when size is a power of two, else 0
	slabBytes uintptr        // objects*size
	recip     uint64
	objects   int // per slab
	size      int // slot size
	pcpu      []pcpuSheaves
	flushing  *atomic.Int32  // &a.flushing
	memNode   []atomic.Int32 // a.memNode

	a          *Allocator
	name       string   // first name
	names      []string // every live name, first one first (slab_mutex)
	refcount   int      // live handles (slab_mutex)
	objectSize int
	align      int
	flags      Flags
	ctor       func(unsafe.Pointer)
	order      int
	minPartial int
	sheafCap   int
	random     uintptr // freelist pointer hardening
	fpOffset   uintptr // where the free pointer lives in a free object

	slowStat [NumStats]uint64            // slow-path events, atomic
	nodes    []atomic.Pointer[cacheNode] // never freed once set
}

// pcpuSheaves is one P's part of a cache (the kernel's slub_percpu_sheaves).
// Touched only by a goroutine pinned to that P that saw flushing == 0, or
// by a flusher.
type pcpuSheaves struct {
	// n and objs are the main sheaf's count and array, kept here while
	// main is the P's (main.n is stale then; setMain/takeMain move the
	// count in and out), so the fast paths reach the array without
	// loading main first: pc → n → slot, not pc → main → n → slot.
	// Zero and nil when main is nil.
	n           int
	objs        []uintptr
	main, spare *sheaf
	// remote collects frees of other nodes' objects (of node
	// remote.node), sent home a sheaf at a time (replaceRemote).
	remote *sheaf
	stat   [NumStats]uint64
	// Padded to 1<<pcpuShift bytes: whole cache lines, so Ps never share
	// one, and a power of two, so &k.pcpu[pid] is a shift and an add
	// (fast_amd64.s). A negative length here means more statistics
	// than fit: raise pcpuShift.
	_ [1<<pcpuShift - (56 + NumStats*8)]byte
}

// pcpuShift is log2 of the size of a pcpuSheaves.
const pcpuShift = 8

// fast_amd64.s finds a P's pcpuSheaves by shifting by pcpuShift: the
// size must be exactly 1<<pcpuShift. Either array length is negative, a
// compile error, if it is not (the padding above counts 56 bytes of
// fields by hand).
//
// Its push sequence also takes a pcpuSheaves's main count and array and a
// sheaf's count and array alike: their offsets must be equal.
var (
	_ [unsafe.Sizeof(pcpuSheaves{}) - 1<<pcpuShift]struct{}
	_ [1<<pcpuShift - unsafe.Sizeof(pcpuSheaves{})]struct{}
	_ [unsafe.Offsetof(pcpuSheaves{}.n) - unsafe.Offsetof(sheaf{}.n)]struct{}
	_ [unsafe.Offsetof(sheaf{}.n) - unsafe.Offsetof(pcpuSheaves{}.n)]struct{}
	_ [unsafe.Offsetof(pcpuSheaves{}.objs) - unsafe.Offsetof(sheaf{}.objs)]struct{}
	_ [unsafe.Offsetof(sheaf{}.objs) - unsafe.Offsetof(pcpuSheaves{}.objs)]struct{}
)

// setMain makes sh (nil for none) the P's main sheaf, its count moving
// into pc.n. The caller owns the P's sheaves (pinned, or a flusher).
func (pc *pcpuSheaves) setMain(sh *sheaf) {
	pc.main = sh
	if sh == nil {
		pc.n, pc.objs = 0, nil
		return
	}
	pc.n, pc.objs = sh.n, sh.objs
}

// takeMain detaches and returns the P's main sheaf (nil if none), its
// count written back.
func (pc *pcpuSheaves) takeMain() *sheaf {
	m := pc.main
	if m != nil {
		m.n = pc.n
	}
	pc.setMain(nil)
	return m
}

// cacheNode is a cache's per-node part (struct kmem_cache_node) with its
// barn. Created when the node joins slab_nodes, never freed.
type cacheNode struct {
	node     int
	listLock lockdep.Mutex // partial list and counters
	partial  slabList
	nrSlabs  int64
	nrFree   int64 // free slots in this node's slabs

	barnLock lockdep.Mutex
	full     sheafStack
	empty    sheafStack
}

func (k *cache) uniqueID() string {
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

func (k *cache) mergeable() bool {
	return k.ctor == nil && k.flags&(NoMerge|debugFlags) == 0
}

func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r == 0x7f {
			return false
		}
	}
	return true
}

// NewCache creates a cache of objects of the given size, or returns an
// alias of a compatible existing one. Invalid arguments fail with an error
// wrapping EINVAL and create nothing. Kernel: kmem_cache_create().
func (a *Allocator) NewCache(name string, size int, opts *CacheOptions) (*Cache, error) {
	var o CacheOptions
	if opts != nil {
		o = *opts
	}
	if !validName(name) {
		return nil, fmt.Errorf("%w: cache name %q (1-64 printable characters, no '/' or spaces)", ErrInvalid, name)
	}
	if size <= 0 || size > MaxSize {
		return nil, fmt.Errorf("%w: cache %q: object size %d not in 1..%d", ErrInvalid, name, size, MaxSize)
	}
	if o.Align < 0 || o.Align&(o.Align-1) != 0 || o.Align > mem.PageSize {
		return nil, fmt.Errorf("%w: cache %q: alignment %d is not a power of two up to %d", ErrInvalid, name, o.Align, mem.PageSize)
	}
	if o.Flags&^validFlags != 0 {
		return nil, fmt.Errorf("%w: cache %q: unknown flags %#x", ErrInvalid, name, uint32(o.Flags&^validFlags))
	}
	if o.Flags&debugFlags != 0 {
		return nil, fmt.Errorf("%w: cache %q: debug flags are not supported yet", ErrInvalid, name)
	}
	align := calculateAlignment(o.Flags, o.Align, size)
	slot := alignUp(max(size, MinAlign), align)
	if o.Ctor != nil {
		// The constructed state must survive a free: the free pointer
		// goes after the object, as the kernel does for ctor caches.
		slot = alignUp(alignUp(size, MinAlign)+MinAlign, align)
	}

	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	if a.closed {
		return nil, fmt.Errorf("%w: allocator closed", ErrDestroyed)
	}
	if _, ok := a.byName[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrExists, name)
	}
	h := &Cache{name: name}
	if k := a.findMergeable(size, align, o); k != nil {
		k.refcount++
		k.names = append(k.names, name)
		h.c = k
		a.byName[name] = h
		return h, nil
	}
	k, err := a.newCacheLocked(name, size, slot, align, o)
	if err != nil {
		return nil, err
	}
	h.c = k
	a.byName[name] = h
	return h, nil
}

func alignUp(x, a int) int { return (x + a - 1) &^ (a - 1) }

// calculateAlignment mirrors the kernel's calculate_alignment().
func calculateAlignment(flags Flags, align, size int) int {
	if flags&HWCacheAlign != 0 {
		ralign := cacheLine
		for size <= ralign/2 && ralign > MinAlign {
			ralign /= 2
		}
		align = max(align, ralign)
	}
	return max(align, MinAlign)
}

// findMergeable returns a cache a new one can alias. Kernel:
// find_mergeable().
func (a *Allocator) findMergeable(size, align int, o CacheOptions) *cache {
	if o.Ctor != nil || o.Flags&(NoMerge|debugFlags) != 0 {
		return nil
	}
	size = alignUp(size, MinAlign)
	for i := len(a.caches) - 1; i >= 0; i-- {
		k := a.caches[i]
		switch {
		case !k.mergeable(), k.refcount == 0:
		case size > k.size:
		case o.Flags&mergeSame != k.flags&mergeSame:
		case k.size&(align-1) != 0:
		case k.size-size >= MinAlign:
		default:
			return k
		}
	}
	return nil
}

// newCacheLocked builds an underlying cache. Called with slab_mutex held.
// Kernel: do_kmem_cache_create() / kmem_cache_open().
func (a *Allocator) newCacheLocked(name string, size, slot, align int, o CacheOptions) (*cache, error) {
	order, objs := calculateOrder(slot)
	k := &cache{
		a: a, flushing: &a.flushing, memNode: a.memNode, id: a.nextID, name: name, names: []string{name}, refcount: 1,
		objectSize: size, size: slot, align: align, flags: o.Flags, ctor: o.Ctor,
		order: order, objects: objs,
		recip:    (1<<32)/uint64(slot) + 1,
		random:   uintptr(rand.Uint64()) | 1,
		sheafCap: sheafCapacity(slot),
	}
	if o.Ctor != nil {
		k.fpOffset = uintptr(alignUp(size, MinAlign))
	}
	if slot&(slot-1) == 0 {
		k.sizeMask = uintptr(slot - 1)
	}
	k.slabBytes = uintptr(objs * slot)
	pm := a.sys.PageMap()
	k.memBase, k.memSize = pm.Base(), pm.Size()
	k.vmemmap = unsafe.Pointer(pm.PageAt(pm.Base()))
	a.nextID++
	a.publishTable(func(t []*cache) []*cache {
		for uint32(len(t)) <= k.id {
			t = append(t, nil)
		}
		t[k.id] = k
		return t
	})
	// min_partial = ilog2(size)/2 clamped to [5, 10], as the kernel.
	k.minPartial = min(max(bits.Len(uint(slot))/2, 5), 10)
	k.pcpu = make([]pcpuSheaves, len(a.memNode))
	k.nodes = make([]atomic.Pointer[cacheNode], len(a.slabNodes))
	for n, ok := range a.slabNodes {
		if ok {
			k.initNode(n)
		}
	}
	a.caches = append(a.caches, k)
	return k, nil
}

// initNode gives k its structure for node n if it has none. Called with
// slab_mutex held. Kernel: init_kmem_cache_node().
func (k *cache) initNode(n int) {
	if k.nodes[n].Load() != nil {
		return
	}
	cn := &cacheNode{node: n, partial: slabList{head: nilPFN}}
	cn.listLock.Init(listLockClass)
	cn.barnLock.Init(barnLockClass)
	k.nodes[n].Store(cn)
}

// calculateOrder picks the smallest slab order whose leftover is at most a
// sixteenth of the slab and which holds enough objects for sheaves to be
// refilled from few slabs. Kernel: calculate_order().
func calculateOrder(size int) (order, objects int) {
	const minObjects = 16
	for order = 0; order <= maxSlabOrder; order++ {
		slabSize := mem.PageSize << order
		objects = slabSize / size
		if objects == 0 {
			continue
		}
		waste := slabSize - objects*size
		if waste*16 <= slabSize && (objects >= minObjects || order == maxSlabOrder) {
			return order, objects
		}
	}
	for order = 0; order <= maxSlabOrder; order++ {
		if objects = (mem.PageSize << order) / size; objects > 0 {
			return order, objects
		}
	}
	return maxSlabOrder, 1
}

// sheafCapacity picks the number of objects a per-P sheaf holds.
func sheafCapacity(size int) int {
	switch {
	case size <= 64:
		return 128
	case size <= 256:
		return 64
	case size <= 1024:
		return 32
	default:
		return 16
	}
}

// Name returns the handle's name.
func (c *Cache) Name() string { return c.name }

// ObjectSize returns the size the cache was created with.
func (c *Cache) ObjectSize() int { return c.c.objectSize }

// Size returns the slot size of the underlying cache (what Ksize reports).
func (c *Cache) Size() int { return c.c.size }

// UniqueID returns the ":[flags-]%07u" id of the underlying cache.
func (c *Cache) UniqueID() string { return c.c.uniqueID() }

// Merged reports whether the handle shares its cache with other names.
func (c *Cache) Merged() bool {
	c.c.a.slabMutex.Lock()
	defer c.c.a.slabMutex.Unlock()
	return len(c.c.names) > 1
}

// Stats returns a snapshot of the underlying cache's statistics.
func (c *Cache) Stats() CacheStats { return c.c.stats() }

func (k *cache) stats() CacheStats {
	s := CacheStats{Name: k.name, ObjectSize: k.objectSize, Size: k.size, Align: k.align,
		ObjsPerSlab: k.objects, Order: k.order, SheafCap: k.sheafCap}
	k.a.slabMutex.Lock()
	s.Aliases = len(k.names) - 1
	k.a.slabMutex.Unlock()
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
			Objects: cn.nrSlabs * int64(k.objects), Partial: int64(cn.partial.n), Free: cn.nrFree})
		cn.listLock.Unlock()
	}
	return s
}

// Shrink flushes every P's sheaves and the barns and gives every empty slab
// back to the page allocator. It does not take mem_hotplug_lock.
// Kernel: kmem_cache_shrink().
func (c *Cache) Shrink() {
	k := c.c
	k.a.stopPcpu()
	k.flushPcpuLocked()
	k.a.startPcpu()
	k.flushBarns()
	k.shrinkNodes()
}

// Destroy removes the handle. When it is the last name of its cache, the
// cache is flushed and shrunk and, if objects remain, Destroy fails with
// an error wrapping ErrBusy naming the cache and the count, and the cache
// stays usable. Kernel: kmem_cache_destroy().
func (c *Cache) Destroy() error {
	k := c.c
	a := k.a
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	if c.dead.Load() {
		return fmt.Errorf("%w: %q", ErrDestroyed, c.name)
	}
	if k.refcount > 1 {
		k.refcount--
		k.removeName(c.name)
		delete(a.byName, c.name)
		c.dead.Store(true)
		return nil
	}
	a.stopPcpu()
	k.flushPcpuLocked()
	a.startPcpu()
	k.flushBarns()
	k.shrinkNodes()
	var inUse, slabs int64
	for n := range k.nodes {
		if cn := k.nodes[n].Load(); cn != nil {
			cn.listLock.Lock()
			inUse += cn.nrSlabs*int64(k.objects) - cn.nrFree
			slabs += cn.nrSlabs
			cn.listLock.Unlock()
		}
	}
	if slabs != 0 {
		return fmt.Errorf("%w: kmem_cache_destroy %s: Slab cache still has objects (%d in use, %d slabs)", ErrBusy, c.name, inUse, slabs)
	}
	k.refcount = 0
	delete(a.byName, c.name)
	for i, x := range a.caches {
		if x == k {
			a.caches = append(a.caches[:i], a.caches[i+1:]...)
			break
		}
	}
	a.publishTable(func(t []*cache) []*cache {
		t[k.id] = nil
		return t
	})
	c.dead.Store(true)
	return nil
}

func (k *cache) removeName(name string) {
	for i, n := range k.names {
		if n == name {
			k.names = append(k.names[:i], k.names[i+1:]...)
			break
		}
	}
}
