// Prefilled sheaves handed to a caller (kmem_cache_prefill_sheaf).

package slab

import (
	"fmt"
	"unsafe"
)

// Sheaf is a prefilled sheaf: a private array of ready objects that one
// goroutine allocates from with no pinning, no lock and no atomic, for hot
// loops and for sections that must not fail. It is not safe for concurrent
// use. Kernel: struct slab_sheaf as returned by kmem_cache_prefill_sheaf().
type Sheaf struct {
	// The sheaf's count and array, copied out of sh while the Sheaf is
	// out (written back by sync): Alloc and Free touch only these and
	// the cache's constant fields, one dependent load fewer than
	// through sh.
	n    int
	objs []uintptr
	k    *kmemCache // c.c
	sh   *objSheaf
	c    *Cache
}

// sync writes the count back into the underlying sheaf.
func (s *Sheaf) sync() { s.sh.n = s.n }

// PrefillSheaf returns a sheaf holding at least n objects (1 <= n <=
// 65536; else ErrInvalid). Objects in it count as allocated until it is
// returned, and the handle cannot be destroyed meanwhile (EBUSY);
// Allocator.Close empties it. A destroyed handle or closed allocator is
// refused. Kernel: kmem_cache_prefill_sheaf().
func (c *Cache) PrefillSheaf(n int) (*Sheaf, error) {
	k := c.c
	if n <= 0 || n > 1<<16 {
		return nil, fmt.Errorf("slab: cache %q: sheaf size %d not in 1..65536: %w", c.name, n, ErrInvalid)
	}
	if k.debug != 0 {
		return nil, fmt.Errorf("slab: cache %q: a debug cache has no sheaves (its objects are checked at every free): %w", c.name, ErrInvalid)
	}
	if err := c.acquire(); err != nil {
		return nil, err
	}
	node := k.callerNode()
	var sh *objSheaf
	if n <= k.sheafCap {
		if cn := k.nodes[node].Load(); cn != nil {
			sh = cn.barnGetFull(k, nil)
		}
	}
	if sh == nil {
		sh = k.newSheaf(max(n, k.sheafCap), node)
		k.a.statUnpinned(k, SheafAlloc)
		k.a.statUnpinned(k, SheafRefill)
		if err := k.refill(c.name, sh, node, 0, n); err != nil {
			k.flushSheaf(sh)
			k.a.statUnpinned(k, SheafFree)
			c.open.Add(-1)
			return nil, err
		}
	}
	if k.acct || k.initAlloc {
		for _, addr := range sh.objs[:sh.n] {
			k.taken(addr) // a barn's sheaf may hold charged (or used) objects
		}
	}
	s := &Sheaf{n: sh.n, objs: sh.objs, c: c, k: k, sh: sh}
	if !k.a.registerOpen(s) {
		k.flushSheaf(sh)
		c.open.Add(-1)
		return nil, fmt.Errorf("slab: cache %q: %w", c.name, ErrClosed)
	}
	k.a.statUnpinned(k, SheafPrefill)
	return s, nil
}

// Len returns the number of objects in the sheaf.
func (s *Sheaf) Len() int { return s.n }

// Cap returns how many objects the sheaf can hold.
func (s *Sheaf) Cap() int { return len(s.objs) }

// Alloc pops an object, or returns nil when the sheaf is empty.
// Kernel: kmem_cache_alloc_from_sheaf().
func (s *Sheaf) Alloc() unsafe.Pointer {
	n := s.n - 1
	if n < 0 {
		return nil
	}
	s.n = n
	return ptr(s.objs[n])
}

// Free pushes an object of the sheaf's cache back into the sheaf, or,
// when it is full, frees it to the cache; nil is ignored. Invalid
// pointers are refused as by Cache.Free.
func (s *Sheaf) Free(p unsafe.Pointer) {
	k := s.k
	addr := uintptr(p)
	n := s.n
	if off := addr - k.memBase; off < k.freeSize && uint(n) < uint(len(s.objs)) {
		h := (*slabHdr)(unsafe.Add(k.vmemmap, (off>>pageShift)*pageStructSize+pageOwnerOff)) // hdrAt
		if h.cache == k.id && k.objStart(h, addr) && (n == 0 || s.objs[n-1] != addr) &&
			!headsFreelist(h, addr-h.base) {
			s.objs[n] = addr
			s.n = n + 1
			return
		}
	}
	s.freeSlow(p)
}

// freeSlow: the sheaf is full, or p is refused, or the cache is one
// whose frees the inline path leaves here (accounted or zeroing:
// freeSize): with room the sheaf keeps the object (uncharged, zeroed for
// InitOnAlloc or InitOnFree: Sheaf.Alloc hands it out as it is); full, it
// goes to the cache.
//
//go:noinline
func (s *Sheaf) freeSlow(p unsafe.Pointer) {
	if p == nil {
		return
	}
	k := s.k
	addr := uintptr(p)
	var top uintptr
	if s.n > 0 {
		top = s.objs[s.n-1]
	}
	if s.n < len(s.objs) {
		if s.c.keepable(addr, top, "prefilled sheaf", k.initAlloc || k.initFree) {
			s.objs[s.n] = addr
			s.n++
		}
		return
	}
	if addr == top {
		k.a.invalidFree(s.c.name, addr, "double free (object on top of the prefilled sheaf)")
		return
	}
	s.c.Free(p) // full: the cache validates and frees it
}

// Refill tops the sheaf up to n objects. Kernel: kmem_cache_refill_sheaf().
func (s *Sheaf) Refill(n int) error {
	k := s.c.c
	if n <= 0 || n > 1<<16 {
		return fmt.Errorf("slab: cache %q: sheaf size %d not in 1..65536: %w", s.c.name, n, ErrInvalid)
	}
	if err := s.c.usable(); err != nil {
		return err
	}
	if s.sh == nil {
		return fmt.Errorf("slab: cache %q: refill of a returned sheaf: %w", s.c.name, ErrInvalid)
	}
	s.sync()
	if n > len(s.sh.objs) {
		bigger := k.newSheaf(n, s.sh.node)
		k.a.statUnpinned(k, SheafAlloc)
		k.a.statUnpinned(k, SheafFree) // the old one
		bigger.n = copy(bigger.objs, s.sh.objs[:s.sh.n])
		s.sh = bigger
	}
	node := k.callerNode()
	if s.sh.n == 0 {
		s.sh.node = node
	} else if s.sh.node != node {
		s.sh.node = mixedNode
	}
	k.a.statUnpinned(k, SheafRefill)
	had := s.sh.n
	err := k.refill(s.c.name, s.sh, node, 0, n)
	if k.initAlloc {
		for _, addr := range s.sh.objs[had:s.sh.n] {
			k.zeroObj(addr)
		}
	}
	s.n, s.objs = s.sh.n, s.sh.objs
	return err
}

// Return gives the sheaf and its remaining objects back to the cache; the
// sheaf must not be used afterwards (if it is, Alloc returns nil, Free
// frees to the cache and Refill fails). After Allocator.Close it does
// nothing (Close freed the objects). Kernel: kmem_cache_return_sheaf().
func (s *Sheaf) Return() {
	if s.sh == nil {
		return
	}
	k := s.c.c
	s.sync()
	sh := s.sh
	s.sh, s.n, s.objs = nil, 0, nil
	if k.a.closed.Load() {
		return // Close detached it and freed its objects with every other page
	}
	k.a.unregisterOpen(s)
	sh.node = k.sheafNode(sh)
	k.disposeSheaf(sh)
	s.c.open.Add(-1)
	k.a.statUnpinned(k, SheafReturn)
}

// sheafNode returns the node of every object of sh, or mixedNode: a
// prefilled sheaf may have been freed into with objects of any node.
func (k *kmemCache) sheafNode(sh *objSheaf) int {
	node := mixedNode
	for i, addr := range sh.objs[:sh.n] {
		s, _ := k.a.slabOf(addr)
		if s == nil || (i > 0 && int(s.node) != node) {
			return mixedNode
		}
		node = int(s.node)
	}
	if sh.n == 0 {
		return sh.node
	}
	return node
}

// detach empties a prefilled sheaf on Allocator.Close: Close frees its
// objects with every other page; Alloc then returns nil.
func (s *Sheaf) detach() { s.sh, s.n, s.objs = nil, 0, nil }
