// The free path: validation, per-P sheaf, remote sheaf, back to the slab.

package slab

import (
	"unsafe"
)

// Free returns an object to its cache; nil is ignored. Pointers that are
// not allocated objects of this cache are refused and reported (see
// Options.OnInvalidFree) and nothing changes: outside hotslab memory, not
// a slab page, not an object's start, another cache's object, a destroyed
// handle or closed allocator, and a double free seen on top of the P's
// sheaf or at the head of the object's slab freelist (a double free of
// an object freed longer ago is not caught without debugging). The fast
// path validates the pointer and pushes it onto the P's sheaf; an object
// of another node goes home through the P's remote sheaf. On amd64 all
// of that is one unpreemptible assembly function, cacheFree. Kernel:
// kmem_cache_free().
func (c *Cache) Free(p unsafe.Pointer) { cacheFree(c, p) }

// cacheFreeGo is Free's pinned Go path: the whole of Free where there is
// no assembly, and where the assembly fast path jumps for everything but
// a valid free into a sheaf with room (so invalid frees are classified
// and reported here).
func cacheFreeGo(c *Cache, p unsafe.Pointer) {
	k := c.c
	addr := uintptr(p)
	if p == nil {
		return
	}
	h := k.hdrAt(addr)
	if h == nil || h.cache != k.id || !k.objStart(h, addr) || c.dead.Load() {
		c.badFree(addr)
		return
	}
	if k.debug != 0 {
		c.freeDebug(h, addr)
		return
	}
	if k.freelistHead(h.base, addr) {
		k.a.invalidFree(c.name, addr, "double free (object heads its slab's freelist)")
		return
	}
	if k.initFree {
		k.zeroObj(addr)
	}
	pc, pid := k.pin()
	if pc != nil && pc.main != nil && int(h.node) == k.nodeOfP(pid) {
		if pc.n > 0 && pc.objs[pc.n-1] == addr {
			unpin(pc)
			k.a.invalidFree(c.name, addr, "double free (object on top of the P's sheaf)")
			return
		}
		if pc.n < len(pc.objs) {
			pc.objs[pc.n] = addr
			pc.n++
			statAdd(&pc.stat[FreeFastpath], 1)
			unpin(pc)
			return
		}
	}
	unpin(pc)
	k.freeSlow(c.name, int(h.node), h.base, addr)
}

// badFree reports why addr cannot be freed to c.
func (c *Cache) badFree(addr uintptr) {
	a := c.c.a
	var why string
	if a.closed.Load() {
		why = "allocator closed"
	} else if c.dead.Load() {
		why = "cache handle destroyed"
	} else {
		var s *slabHdr
		s, why = a.slabOf(addr)
		switch {
		case s == nil:
		case s.cache != c.c.id:
			why = "object belongs to another cache"
			if o := a.cacheOf(s.cache); o != nil {
				why = "object belongs to cache " + o.name
			}
		default:
			why = "not the start of an object"
		}
	}
	a.invalidFree(c.name, addr, why)
}

// freeSlow: the P's main sheaf is full (or absent), or the object is
// remote. Kernel: __pcs_replace_full_main() / __slab_free().
func (k *kmemCache) freeSlow(name string, node int, base, addr uintptr) {
	pc, pid, gen := k.pinUnflushed()
	if pc == nil {
		unpin(pc)
		k.freeToSlab(name, node, base, addr)
		return
	}
	my := k.nodeOfP(pid)
	if node != my {
		r := pc.remote
		if r != nil && r.node == node && r.n < len(r.objs) {
			if r.n > 0 && r.objs[r.n-1] == addr {
				unpin(pc)
				k.a.invalidFree(name, addr, "double free (object on top of the P's remote sheaf)")
				return
			}
			statAdd(&pc.stat[FreeRemote], 1)
			r.objs[r.n] = addr
			r.n++
			unpin(pc)
			return
		}
		statAdd(&pc.stat[FreeRemote], 1)
		pc.remote = nil
		unpin(pc)
		k.replaceRemote(r, node, addr, gen)
		return
	}
	statAdd(&pc.stat[FreeSlowpath], 1)
	if pc.n > 0 && pc.objs[pc.n-1] == addr {
		unpin(pc)
		k.a.invalidFree(name, addr, "double free (object on top of the P's sheaf)")
		return
	}
	if sp := pc.spare; pc.n >= len(pc.objs) && sp != nil && sp.n < len(sp.objs) {
		pc.spare = pc.takeMain()
		pc.setMain(sp)
	}
	if pc.n < len(pc.objs) {
		// The spare, or emptied by another goroutine on this P
		// meanwhile.
		pc.objs[pc.n] = addr
		pc.n++
		unpin(pc)
		return
	}
	// Main is full (the spare too, or there is none): a full main with
	// no spare becomes the spare, as the kernel keeps it; otherwise it
	// goes to the barn. An empty sheaf becomes main.
	full := pc.takeMain()
	if full != nil && pc.spare == nil {
		pc.spare, full = full, nil
	}
	unpin(pc)

	empty := k.getEmptySheaf(my, full)
	empty.objs[0] = addr
	empty.n = 1
	// If a flush ran meanwhile, or the goroutine is now on a P of
	// another node, installSheaf puts addr back in its slab instead.
	k.installSheaf(empty, gen)
}

// replaceRemote: the P's remote sheaf r (taken off the P; may be nil) is
// full or collects another node's objects. A full one goes whole to the
// barn of its node, where that node's Ps take it as a full sheaf, so the
// objects go home without being touched; otherwise (or if the barn is
// full) its objects go back to their slabs. addr starts the P's next
// remote sheaf. Kernel: none; SLUB sends remote frees to their slab one
// by one (__slab_free), which costs a list_lock and two cache misses per
// object.
func (k *kmemCache) replaceRemote(r *objSheaf, node int, addr uintptr, gen uint64) {
	a := k.a
	if r != nil && r.n == len(r.objs) && len(r.objs) == k.sheafCap {
		if cn := k.nodes[r.node].Load(); cn != nil && cn.barnPutFull(r) {
			a.statUnpinned(k, BarnPut)
			r = nil
		}
	}
	if r != nil {
		k.flushSheaf(r)
	} else {
		r = k.getEmptySheaf(node, nil)
	}
	r.node = node
	r.objs[0] = addr
	r.n = 1
	pc, pid := k.pinAt(gen)
	if pc != nil && pc.remote == nil && k.nodeOfP(pid) != node {
		pc.remote, r = r, nil
	}
	unpin(pc)
	if r != nil {
		k.flushSheaf(r)
		k.a.statUnpinned(k, SheafFree)
	}
}

// freeToSlab puts one object back on its slab under the node's list_lock
// and frees the slab if it became empty and the node has enough partial
// slabs. Kernel: __slab_free() / discard_slab().
func (k *kmemCache) freeToSlab(name string, node int, base, addr uintptr) {
	cn := k.nodes[node].Load()
	cn.listLock.Lock()
	s := k.a.headHdr(base)
	if s.cache != k.id || s.base != base || s.inuse == 0 || s.freelist == uint32(addr-base)+1 {
		cn.listLock.Unlock()
		k.a.invalidFree(name, addr, "double free (object heads its slab's freelist)")
		return
	}
	discard := k.putObjLocked(cn, s, addr)
	cn.listLock.Unlock()
	if discard != nil {
		k.discardSlab(discard)
	}
}

// putObjLocked returns addr to s; it returns s if s is now empty and must
// be discarded. Called with the node's list_lock.
func (k *kmemCache) putObjLocked(cn *cacheNode, s *slabHdr, addr uintptr) *slabHdr {
	if k.acct {
		k.uncharge(s, addr) // a free object in a slab is charged to no one
	}
	k.pushFree(s, addr)
	s.inuse--
	cn.nrFree++
	// An empty slab is discarded when the node has min_partial partial
	// slabs: the kernel's nr_partial >= min_partial, counted before a
	// slab that was full joins the list.
	nrPartial := cn.partial.n
	if !s.onList {
		cn.partial.push(k.a, s)
	}
	if s.inuse == 0 && nrPartial >= k.minPartial {
		cn.partial.remove(k.a, s)
		cn.nrSlabs--
		cn.nrObjs -= int64(k.objectsOf(s))
		cn.nrFree -= int64(k.objectsOf(s))
		return s
	}
	return nil
}
