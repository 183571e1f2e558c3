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
