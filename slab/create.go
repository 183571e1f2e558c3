// Cache creation (with merging into a compatible cache) and destruction.

package slab

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

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
// alias of a compatible existing one (then the cache's object size
// becomes the largest of its names' sizes, as the kernel's
// __kmem_cache_alias does). Invalid arguments fail with an error wrapping
// ErrInvalid (EINVAL), a taken name with ErrExists, and create nothing.
// Kernel: kmem_cache_create().
func (a *Allocator) NewCache(name string, size int, opts *CacheOptions) (*Cache, error) {
	var o CacheOptions
	if opts != nil {
		o = *opts
	}
	if !validName(name) {
		return nil, fmt.Errorf("slab: cache name %q (1-64 printable characters, no '/' or spaces): %w", name, ErrInvalid)
	}
	if size <= 0 || size > MaxSize {
		return nil, fmt.Errorf("slab: cache %q: object size %d not in 1..%d: %w", name, size, MaxSize, ErrInvalid)
	}
	if o.Align < 0 || o.Align&(o.Align-1) != 0 || o.Align > mem.PageSize {
		return nil, fmt.Errorf("slab: cache %q: alignment %d is not a power of two up to %d: %w", name, o.Align, mem.PageSize, ErrInvalid)
	}
	if o.Flags&^validFlags != 0 {
		return nil, fmt.Errorf("slab: cache %q: unknown flags %#x: %w", name, uint32(o.Flags&^validFlags), ErrInvalid)
	}
	o.Flags |= a.debugFor(name)
	align := calculateAlignment(o.Flags, o.Align, size)
	slot := alignUp(max(size, MinAlign), align)
	if o.Flags&debugFlags != 0 {
		// The object, then its red zone / state word, its free pointer
		// and, with StoreUser, its alloc and free tracks (debug.go).
		slot = alignUp(alignUp(size, MinAlign)+debugMeta(o.Flags), align)
	} else if o.Ctor != nil {
		// The constructed state must survive a free: the free pointer
		// goes after the object, as the kernel does for ctor caches.
		slot = alignUp(alignUp(size, MinAlign)+MinAlign, align)
	}

	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	if a.closed.Load() {
		return nil, fmt.Errorf("slab: cache %q: %w", name, ErrClosed)
	}
	if _, ok := a.byName[name]; ok {
		return nil, fmt.Errorf("slab: cache %q: %w", name, ErrExists)
	}
	h := &Cache{name: name}
	if k := a.findMergeable(size, align, o); k != nil {
		k.refcount++
		k.names = append(k.names, name)
		k.aliases.Store(int32(len(k.names) - 1))
		if int32(size) > k.objectSize.Load() {
			k.objectSize.Store(int32(size))
		}
		h.c, h.fast = k, k
		a.byName[name] = h
		if a.sysfs != nil {
			a.sysfs.NameAdded(name, k.uniqueID)
		}
		return h, nil
	}
	k, err := a.newCacheLocked(name, size, slot, align, o)
	if err != nil {
		return nil, err
	}
	h.c, h.fast = k, k
	a.byName[name] = h
	if a.sysfs != nil {
		a.sysfs.CacheAdded(a.infoLocked(k))
		if k.mergeable() {
			a.sysfs.NameAdded(name, k.uniqueID)
		}
	}
	return h, nil
}

// findMergeable returns a cache a new one can alias. Kernel:
// find_mergeable().
func (a *Allocator) findMergeable(size, align int, o CacheOptions) *kmemCache {
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
func (a *Allocator) newCacheLocked(name string, size, slot, align int, o CacheOptions) (*kmemCache, error) {
	// An accounted cache's slabs end with their objects' ObjCgroup ids:
	// its geometry is that of slots objExtSize bytes larger.
	ext := 0
	if o.Flags&Account != 0 {
		ext = objExtSize
	}
	order, objs := calculateOrder(slot + ext)
	k := &kmemCache{
		a: a, procNode: a.procNode, id: a.allocID(), name: name, names: []string{name}, refcount: 1,
		size: slot, align: align, flags: o.Flags, ctor: o.Ctor,
		order: order, objects: objs,
		recip:    (1<<32)/uint64(slot) + 1,
		random:   uintptr(rand.Uint64()) | 1,
		sheafCap: sheafCapacity(slot),
	}
	if o.Ctor != nil {
		k.fpOffset = uintptr(alignUp(size, MinAlign))
	}
	if o.Flags&debugFlags != 0 {
		k.debug = o.Flags & debugFlags
		if o.Ctor != nil {
			k.debug &^= Poison // the constructed state must survive (as the kernel)
		}
		k.metaOff = uintptr(alignUp(size, MinAlign))
		k.fpOffset = k.metaOff + 8
		k.debugLock.Init(debugLockClass)
		k.debugSlabs = map[uintptr]struct{}{}
	}
	k.fastMask = ^uintptr(0)
	// A power of two's mask alone validates an offset only when objects
	// fill the slab: not with a vector at its end.
	if slot&(slot-1) == 0 && ext == 0 {
		k.fastMask = uintptr(slot - 1)
		k.sizeMask = uintptr(slot - 1)
		k.sizeShift = uint(bits.TrailingZeros(uint(slot)))
	}
	k.slabBytes = uintptr(objs * slot)
	k.minOrder = bits.Len(uint((slot + ext - 1) >> mem.PageShift))
	k.minObjects = (mem.PageSize << k.minOrder) / (slot + ext)
	k.minSlabBytes = uintptr(k.minObjects * slot)
	pm := a.sys.PageMap()
	k.memBase, k.memSize = pm.Base(), pm.Size()
	k.freeSize = k.memSize
	if ext != 0 {
		k.acct, k.chargeSize, k.freeSize = true, int64(slot+ext), 0
	}
	if o.Ctor == nil {
		k.initAlloc, k.initFree = a.initOnAlloc, a.initOnFree
	}
	if k.initAlloc || k.initFree {
		k.freeSize = 0 // Magazine and prefilled Sheaf frees zero in their slow paths
	}
	if a.randomOrder {
		k.perm = randomPerm(objs)
		k.permMin = randomPerm(k.minObjects)
	}
	k.vmemmap = unsafe.Pointer(pm.PageAt(pm.Base()))
	k.objectSize.Store(int32(size))
	a.publishTable(func(t []*kmemCache) []*kmemCache {
		for uint32(len(t)) <= k.id {
			t = append(t, nil)
		}
		t[k.id] = k
		return t
	})
	// min_partial = ilog2(size)/2 clamped to [5, 10], as the kernel.
	k.minPartial = min(max(bits.Len(uint(slot))/2, 5), 10)
	k.pcpu = make([]pcpuSheaves, len(a.procNode))
	for p := range k.pcpu {
		k.pcpu[p].node = int(a.procNode[p].Load())
	}
	k.setFastProcs(k.procsForAsm())
	k.nodes = make([]atomic.Pointer[cacheNode], len(a.slabNodes))
	for n, ok := range a.slabNodes {
		if ok {
			k.initNode(n)
		}
	}
	k.uniqueID = a.uniqueIDLocked(k)
	a.caches = append(a.caches, k)
	return k, nil
}

// allocID returns an unused cache id, reusing those of destroyed caches
// (no page carries them any more: a cache is destroyed only once all its
// slabs are freed, and freeing clears the pages' headers). Called with
// slab_mutex held.
func (a *Allocator) allocID() uint32 {
	if n := len(a.freeIDs); n > 0 {
		id := a.freeIDs[n-1]
		a.freeIDs = a.freeIDs[:n-1]
		return id
	}
	a.nextID++
	return a.nextID - 1
}

// uniqueIDLocked names k's /sys/kernel/slab directory: a mergeable
// cache's ":[flags-]%07u", an unmergeable cache's own name, as the
// kernel's sysfs_slab_add() does — with "-<cache id>" added in the rare
// case that another live cache has the same one (same slot size and
// flags but not mergeable with it for alignment, or a name that looks
// like an id). Called with slab_mutex held.
func (a *Allocator) uniqueIDLocked(k *kmemCache) string {
	id := k.name
	if k.mergeable() {
		id = k.mergeID()
	}
	for _, o := range a.caches {
		if o.uniqueID == id {
			return fmt.Sprintf("%s-%d", id, k.id)
		}
	}
	return id
}

// initNode gives k its structure for node n if it has none. Called with
// slab_mutex held. Kernel: init_kmem_cache_node().
func (k *kmemCache) initNode(n int) {
	if k.nodes[n].Load() != nil {
		return
	}
	cn := &cacheNode{node: n, partial: slabList{head: nilPFN}}
	cn.listLock.Init(listLockClass)
	cn.barnLock.Init(barnLockClass)
	k.nodes[n].Store(cn)
}

// Destroy removes the handle: from then on it refuses to allocate
// (ErrDestroyed) and to free (reported as an invalid free). When it is the
// last name of its cache, the cache is flushed and shrunk and, if objects
// remain, Destroy fails with an error wrapping ErrBusy (EBUSY) naming the
// cache and the count, and the cache and handle stay usable; so does it,
// whatever the name, while a prefilled sheaf or magazine taken through
// the handle is out (even an empty one). Destroy must not run
// concurrently with other calls on the same handle. A kmalloc
// cache's handle refuses with ErrPermanent (EPERM); a destroyed handle
// with ErrDestroyed. Kernel: kmem_cache_destroy().
func (c *Cache) Destroy() error {
	k := c.c
	a := k.a
	if c.kmalloc {
		return fmt.Errorf("slab: kmem_cache_destroy %s: %w", c.name, ErrPermanent)
	}
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	if c.dead.Load() {
		return fmt.Errorf("slab: kmem_cache_destroy %s: %w", c.name, ErrDestroyed)
	}
	if a.closed.Load() {
		return fmt.Errorf("slab: kmem_cache_destroy %s: %w", c.name, ErrClosed)
	}
	c.dead.Store(true) // before looking at open (see Cache.open)
	if n := c.open.Load(); n != 0 {
		c.dead.Store(false)
		return fmt.Errorf("slab: kmem_cache_destroy %s: %d prefilled sheaves or magazines not returned: %w", c.name, n, ErrBusy)
	}
	if k.refcount > 1 {
		k.refcount--
		k.removeName(c.name)
		delete(a.byName, c.name)
		c.kill()
		if a.sysfs != nil && k.mergeable() {
			a.sysfs.NameRemoved(c.name)
		}
		return nil
	}
	a.beginFlush(k)
	k.flushPcpuLocked()
	a.endFlush(k)
	k.flushBarns()
	k.shrinkNodes()
	var inUse, slabs int64
	for n := range k.nodes {
		if cn := k.nodes[n].Load(); cn != nil {
			cn.listLock.Lock()
			inUse += cn.nrObjs - cn.nrFree
			slabs += cn.nrSlabs
			cn.listLock.Unlock()
		}
	}
	if slabs != 0 {
		c.dead.Store(false)
		return fmt.Errorf("slab: kmem_cache_destroy %s: Slab cache still has objects (%d in use, %d slabs): %w", c.name, inUse, slabs, ErrBusy)
	}
	k.refcount = 0
	delete(a.byName, c.name)
	if a.sysfs != nil {
		if k.mergeable() {
			a.sysfs.NameRemoved(c.name)
		}
		a.sysfs.CacheRemoving(k.uniqueID)
	}
	for i, x := range a.caches {
		if x == k {
			a.caches = append(a.caches[:i], a.caches[i+1:]...)
			break
		}
	}
	a.publishTable(func(t []*kmemCache) []*kmemCache {
		t[k.id] = nil
		return t
	})
	a.freeIDs = append(a.freeIDs, k.id)
	c.kill()
	return nil
}

// kill marks the handle destroyed: its fast paths see deadCache from now
// on (no sheaf, an empty range), so they go to the Go paths, which refuse.
func (c *Cache) kill() {
	c.dead.Store(true)
	c.fast = deadCache
}

// deadCache is what a destroyed handle's fast paths see.
var deadCache = &kmemCache{}

func (k *kmemCache) removeName(name string) {
	for i, n := range k.names {
		if n == name {
			k.names = append(k.names[:i], k.names[i+1:]...)
			break
		}
	}
	k.aliases.Store(int32(max(len(k.names)-1, 0)))
}
