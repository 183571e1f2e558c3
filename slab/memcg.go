// Memory cgroup accounting: the per-slab ObjCgroup vectors, charging an
// accounted allocation and uncharging its free (the kernel's
// memcg_slab_post_alloc_hook and memcg_slab_free_hook).

package slab

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
)

// objExtSize is the size of an object's vector entry: the id of its
// memcg.ObjCgroup (the kernel's slabobj_ext, an obj_cgroup pointer).
// Like the rest of slab's metadata it is off the Go heap and
// pointer-free: the collector sees nothing per object.
const objExtSize = 4

// Memcg returns the allocator's memory controller: the group tree that
// accounted allocations charge (Cache.In, Cache.AllocContext,
// KmallocGroup, KmallocContext).
func (a *Allocator) Memcg() *memcg.Controller { return a.memcg }

// stat is the memcg statistic k's objects count in.
func (k *kmemCache) stat() memcg.Stat {
	if k.flags&ReclaimAccount != 0 {
		return memcg.StatSlabReclaimable
	}
	return memcg.StatSlabUnreclaimable
}

// objExt returns the vector entry of the object at addr of the slab
// whose header (of addr's page) is h: the vector follows the slab's
// objects. k must be accounted and addr an object start.
func (k *kmemCache) objExt(h *slabHdr, addr uintptr) *uint32 {
	idx := uintptr((uint64(addr-h.base) * k.recip) >> 32)
	return (*uint32)(ptr(h.base + k.slabBytesOf(h) + idx*objExtSize))
}

// clearObjExts zeroes the vector of a new slab of k at base.
func (k *kmemCache) clearObjExts(base uintptr, objects int, slabBytes uintptr) {
	clear(unsafe.Slice((*uint32)(ptr(base+slabBytes)), objects))
}

// charge charges the object p, just allocated from k, to g and records
// the ObjCgroup in its vector entry. On failure the caller frees p.
func (k *kmemCache) charge(g *memcg.Group, p unsafe.Pointer) error {
	addr := uintptr(p)
	h := k.hdrAt(addr)
	id, err := k.a.memcg.Charge(g, k.chargeSize, int(h.node), k.stat())
	if err != nil {
		return err
	}
	// A plain store (an XCHG would double the accounted pair): the
	// object reaches a freeing goroutine only through the caller's own
	// synchronisation, which orders this store before the free's load.
	*k.objExt(h, addr) = id
	return nil
}

// uncharge uncharges the object at addr (validated as an object of k,
// h its page's header) if it is charged, and clears its vector entry, so
// that a second free of it uncharges nothing. (Two frees of one object
// racing each other are a double free the free path cannot see; they
// may both uncharge, as they may both push it.)
func (k *kmemCache) uncharge(h *slabHdr, addr uintptr) {
	if !k.acct {
		return
	}
	e := k.objExt(h, addr)
	if id := *e; id != 0 {
		*e = 0
		k.a.memcg.Uncharge(id, k.chargeSize, int(h.node), k.stat())
	}
}

// flushAccounted empties the per-P sheaves and barns of every accounted
// cache into their slabs, uncharging the freed objects they kept charged
// for reuse (the memcg controller's flusher: Drain and reclaim at a
// limit call it). Kernel: none — SLUB uncharges at free; here a free
// leaves the charge for the next allocation of the same group on the P.
func (a *Allocator) flushAccounted() {
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	if a.closed.Load() {
		return
	}
	var ks []*kmemCache
	for _, k := range a.caches {
		if k.acct {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return
	}
	a.beginFlush(ks...)
	for _, k := range ks {
		k.flushPcpuLocked()
	}
	a.endFlush(ks...)
	for _, k := range ks {
		k.flushBarns()
	}
}

// unchargeStale uncharges an object a plain (uncharged) allocation just
// took from the per-P layer, where its last user's charge stays until
// it is allocated again or goes back to its slab.
func (k *kmemCache) unchargeStale(addr uintptr) {
	k.uncharge(k.hdrAt(addr), addr)
}

// unchargeSlab uncharges every charged object of the slab at base
// (Close frees it with its objects).
func (k *kmemCache) unchargeSlab(h *slabHdr) {
	if !k.acct {
		return
	}
	n := k.objectsOf(h)
	vec := unsafe.Slice((*uint32)(ptr(h.base+k.slabBytesOf(h))), n)
	for i := range vec {
		if id := atomic.SwapUint32(&vec[i], 0); id != 0 {
			k.a.memcg.Uncharge(id, k.chargeSize, int(h.node), k.stat())
		}
	}
}

// GroupCache is a cache handle that charges what it allocates to a
// memory cgroup: Cache.In's result. It is a small value; make one per
// group and cache, or per call — both cost nothing.
type GroupCache struct {
	c *Cache
	g *memcg.Group
}

// In returns a handle that allocates from c charging g (the kernel's
// allocation from a SLAB_ACCOUNT cache by a task in g). c must have been
// created with Account, and g be of this allocator's controller:
// otherwise every allocation through the handle fails with ErrInvalid. A
// group removed meanwhile is charged through its nearest live ancestor.
// Free objects with the handle or with c.Free, alike: the object keeps
// its charge in the P's sheaf until it is allocated again (through the
// same group: the charge is reused) or goes back to its slab (then it is
// uncharged); see package memcg's "Charges kept for reuse".
func (c *Cache) In(g *memcg.Group) GroupCache { return GroupCache{c, g} }

// Alloc returns an object charged to the handle's group: its slot size
// plus 4 bytes (the object's vector entry) to the group and every
// ancestor. At the group's memory.max it reclaims and then fails with an
// error wrapping ErrNoMemory, memcg.ErrNoMemory and syscall.ENOMEM.
func (gc GroupCache) Alloc() (unsafe.Pointer, error) {
	if g := gc.g; g != nil && g.Controller() == gc.c.c.a.memcg {
		if p := groupReuse(gc.c, g.TargetIDRef()); p != nil {
			return p, nil
		}
	}
	return gc.AllocNode(mem.NumaNoNode, 0)
}

// reuse pops the top object of the P's main sheaf if it is still charged
// where this allocation would charge (see AllocNode), else returns nil.
func (gc GroupCache) reuse() unsafe.Pointer {
	if gc.g == nil || gc.g.Controller() != gc.c.c.a.memcg {
		return nil
	}
	return groupReuseGo(gc.c, gc.g.TargetIDRef())
}

// groupReuseGo is groupReuse's Go path. The target is read pinned: an id
// read there is not freed and reused before the section ends (a removal's
// drain begins with a grace period), and after a removal it is the
// parent's.
func groupReuseGo(c *Cache, tid *atomic.Uint32) unsafe.Pointer {
	k := c.c
	// The cases the assembly's groupProcs is 0 for: not accounted, a
	// debug cache, zeroing at allocation, failslab to be asked.
	if !k.acct || k.debug != 0 || k.initAlloc || k.a.failslab.Active() || c.dead.Load() {
		return nil
	}
	var p unsafe.Pointer
	pc, _ := k.pin()
	if pc != nil && pc.n > 0 {
		addr := pc.objs[pc.n-1]
		if *k.objExt(k.hdrAt(addr), addr) == tid.Load() {
			pc.n--
			statAdd(&pc.stat[AllocFastpath], 1)
			p = ptr(addr)
		}
	}
	unpin(pc)
	return p
}

// Zalloc is Alloc with the object zeroed over the cache's object size.
func (gc GroupCache) Zalloc() (unsafe.Pointer, error) {
	return gc.AllocNode(mem.NumaNoNode, Zero)
}

// AllocNode is Cache.AllocNode charging the handle's group.
//
// The fast path: an object freed on this P stays charged in the P's
// sheaf until it is allocated again or goes back to its slab; when the
// top object is still charged to the ObjCgroup this allocation would
// charge, it is taken as it is — no charge, no uncharge, no statistics
// to move.
func (gc GroupCache) AllocNode(node int, gfp GFP) (unsafe.Pointer, error) {
	c := gc.c
	k := c.c
	// The reuse path does not ask failslab: while it is active, go
	// through Alloc, which asks it once.
	if node == mem.NumaNoNode && gfp == 0 && !k.a.failslab.Active() {
		if p := gc.reuse(); p != nil {
			if k.initAlloc {
				k.zeroObj(uintptr(p))
			}
			return p, nil
		}
	}
	if !k.acct {
		return nil, fmt.Errorf("slab: cache %q: charging a group needs a cache created with Account: %w", c.name, ErrInvalid)
	}
	if gc.g == nil || gc.g.Controller() != k.a.memcg {
		return nil, fmt.Errorf("slab: cache %q: a group of another allocator's controller (or nil): %w", c.name, ErrInvalid)
	}
	var p unsafe.Pointer
	var err error
	if node == mem.NumaNoNode && gfp == 0 {
		p, err = c.Alloc() // uncharged (a stale charge dropped)
	} else {
		p, err = c.AllocNode(node, gfp)
	}
	if err != nil {
		return nil, err
	}
	if err := k.charge(gc.g, p); err != nil {
		c.Free(p)
		return nil, &causeError{fmt.Sprintf("slab: cache %q", c.name), ErrNoMemory, err}
	}
	return p, nil
}

// Free frees an object of the cache, as Cache.Free.
func (gc GroupCache) Free(p unsafe.Pointer) { gc.c.Free(p) }

// Group returns the handle's group.
func (gc GroupCache) Group() *memcg.Group { return gc.g }

// Cache returns the handle's cache.
func (gc GroupCache) Cache() *Cache { return gc.c }

// AllocContext allocates from c charging the group ctx carries
// (memcg.NewContext) if c was created with Account; without a group, or
// from a cache without Account, it is Alloc, uncharged (accounting is
// opt-in per cache, as SLAB_ACCOUNT is). Kernel: an allocation from a
// SLAB_ACCOUNT cache charging current's memcg.
func (c *Cache) AllocContext(ctx context.Context) (unsafe.Pointer, error) {
	if g := memcg.FromContext(ctx); g != nil && c.c.acct {
		return c.In(g).Alloc()
	}
	return c.Alloc()
}

// KmallocGroup is Kmalloc charging g: sizes up to 8 KiB come from the
// accounted kmalloc-cg-N caches, larger ones from the page allocator,
// charged by the page. Kernel: kmalloc(size, GFP_KERNEL_ACCOUNT) by a
// task in g.
func (a *Allocator) KmallocGroup(g *memcg.Group, size int, gfp GFP) (unsafe.Pointer, error) {
	return a.kmallocGroupNode(g, size, mem.NumaNoNode, gfp)
}

// KmallocContext is KmallocGroup charging the group ctx carries
// (memcg.NewContext); without one it is Kmalloc.
func (a *Allocator) KmallocContext(ctx context.Context, size int, gfp GFP) (unsafe.Pointer, error) {
	if g := memcg.FromContext(ctx); g != nil {
		return a.KmallocGroup(g, size, gfp)
	}
	return a.Kmalloc(size, gfp)
}

func (a *Allocator) kmallocGroupNode(g *memcg.Group, size, node int, gfp GFP) (unsafe.Pointer, error) {
	if g == nil || g.Controller() != a.memcg {
		return nil, fmt.Errorf("slab: kmalloc %d bytes: a group of another allocator's controller (or nil): %w", size, ErrInvalid)
	}
	if size > 0 && size <= KmallocMaxCacheSize {
		return a.kmallocCGCache(size).In(g).AllocNode(node, gfp)
	}
	p, err := a.KmallocNode(size, node, gfp)
	if err != nil {
		return nil, err
	}
	addr := uintptr(p)
	pg := a.sys.PageOf(addr)
	h := hdr(pg)
	id, err := a.memcg.Charge(g, int64(mem.PageSize)<<pg.Order(), a.sys.PageNode(addr), memcg.StatKernel)
	if err != nil {
		a.Kfree(p)
		return nil, &causeError{fmt.Sprintf("slab: kmalloc %d bytes", size), ErrNoMemory, err}
	}
	atomic.StoreUint32(&h.next, id) // a large allocation's ObjCgroup
	return p, nil
}

// unchargeLarge uncharges a large kmalloc allocation (head page pg,
// header h) if it is charged.
func (a *Allocator) unchargeLarge(pg *mem.Page, h *slabHdr) {
	if id := atomic.SwapUint32(&h.next, 0); id != 0 && id != nilPFN {
		a.memcg.Uncharge(id, int64(mem.PageSize)<<pg.Order(), a.sys.PageNode(h.base), memcg.StatKernel)
	}
}

// objCgroupOf returns the ObjCgroup a kmalloc object or large allocation
// at addr is charged to, or nil.
func (a *Allocator) objCgroupOf(addr uintptr) *memcg.ObjCgroup {
	pg := a.sys.PageOf(addr)
	if pg == nil {
		return nil
	}
	h := hdr(pg)
	if h.flags&hdrLarge != 0 {
		return a.memcg.ObjCgroupOf(atomic.LoadUint32(&h.next))
	}
	k := a.cacheOf(h.cache)
	if k == nil || !k.acct || !k.objStart(h, addr) {
		return nil
	}
	return a.memcg.ObjCgroupOf(atomic.LoadUint32(k.objExt(h, addr)))
}

// GroupSlabInfo is one cache's share of a group: what the kernel's
// tools/cgroup/memcg_slabinfo.py prints per cache for a cgroup.
type GroupSlabInfo struct {
	Cache   string // the cache's first name
	Objects int64  // objects charged to the group or a descendant
	Bytes   int64  // what they charge (slot and vector entry each)
}

// MemcgSlabInfo returns, per accounted cache, how many objects are
// charged to g or its descendants (large kmalloc allocations are kernel
// pages, not slab: memory.stat's "kernel" counts them), caches without any left out, in creation order. It first
// empties the accounted caches' per-P sheaves (freed objects wait there
// still charged, for reuse), then walks every slab of the present memory
// under mem_hotplug_lock (read) and slab_mutex: a snapshot of the live
// objects, exact when nothing allocates or frees meanwhile. Objects of
// removed descendants count for the ancestor they were moved to.
func (a *Allocator) MemcgSlabInfo(g *memcg.Group) []GroupSlabInfo {
	a.flushAccounted()
	sys := a.sys
	sys.GetOnlineMems()
	defer sys.PutOnlineMems()
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	under := func(id uint32) bool {
		o := a.memcg.ObjCgroupOf(id)
		if o == nil {
			return false
		}
		for x := o.Group(); x != nil; x = x.Parent() {
			if x == g {
				return true
			}
		}
		return false
	}
	counts := map[*kmemCache]*GroupSlabInfo{}
	a.eachSlabHead(true, func(_ *mem.Page, h *slabHdr, _ uintptr) {
		if h.flags&hdrLarge != 0 {
			return
		}
		k := a.cacheOf(h.cache)
		if k == nil || !k.acct {
			return
		}
		vec := unsafe.Slice((*uint32)(ptr(h.base+k.slabBytesOf(h))), k.objectsOf(h))
		for i := range vec {
			if id := atomic.LoadUint32(&vec[i]); id != 0 && under(id) {
				gi := counts[k]
				if gi == nil {
					gi = &GroupSlabInfo{Cache: k.name}
					counts[k] = gi
				}
				gi.Objects++
				gi.Bytes += k.chargeSize
			}
		}
	})
	var out []GroupSlabInfo
	for _, k := range a.caches {
		if gi := counts[k]; gi != nil {
			out = append(out, *gi)
		}
	}
	return out
}
