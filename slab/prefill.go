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
	k    *cache // c.c
	sh   *sheaf
	c    *Cache
}

// sync writes the count back into the underlying sheaf.
func (s *Sheaf) sync() { s.sh.n = s.n }

// PrefillSheaf returns a sheaf holding at least n objects (1 <= n <=
// 65536). Objects in it count as allocated until it is returned.
// Kernel: kmem_cache_prefill_sheaf().
func (c *Cache) PrefillSheaf(n int) (*Sheaf, error) {
	k := c.c
	if n <= 0 || n > 1<<16 {
		return nil, fmt.Errorf("%w: cache %q: sheaf size %d", ErrInvalid, c.name, n)
	}
	if c.dead.Load() {
		return nil, fmt.Errorf("%w: %q", ErrDestroyed, c.name)
	}
	node := k.a.localNode(0)
	var sh *sheaf
	if n <= k.sheafCap {
		if cn := k.nodes[node].Load(); cn != nil {
			sh = cn.barnGetFull(k, nil)
		}
	}
	if sh == nil {
		sh = k.newSheaf(max(n, k.sheafCap))
		if err := k.refill(sh, node, 0, n); err != nil {
			k.flushSheaf(sh)
			return nil, err
		}
	}
	k.a.statUnpinned(k, SheafPrefill)
	return &Sheaf{n: sh.n, objs: sh.objs, c: c, k: k, sh: sh}, nil
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
// when it is full, frees it to the cache. Invalid pointers are refused as
// by Cache.Free.
func (s *Sheaf) Free(p unsafe.Pointer) {
	k := s.k
	addr := uintptr(p)
	n := s.n
	if off := addr - k.memBase; off < k.memSize && uint(n) < uint(len(s.objs)) {
		h := (*slabHdr)(unsafe.Add(k.vmemmap, (off>>pageShift)*pageStructSize+pageOwnerOff)) // hdrAt
		if h.cache == k.id && k.objStart(h.base, addr) && (n == 0 || s.objs[n-1] != addr) {
			s.objs[n] = addr
			s.n = n + 1
			return
		}
	}
	s.freeSlow(p)
}

// freeSlow: the sheaf is full, or p is refused.
//
//go:noinline
func (s *Sheaf) freeSlow(p unsafe.Pointer) {
	k := s.k
	addr := uintptr(p)
	if h := k.hdrAt(addr); h == nil || h.cache != k.id || !k.objStart(h.base, addr) {
		s.c.badFree(addr)
		return
	}
	if s.n > 0 && s.objs[s.n-1] == addr {
		k.a.invalidFree(s.c.name, addr, "double free")
		return
	}
	s.c.Free(p) // the sheaf is full
}

// Refill tops the sheaf up to n objects. Kernel: kmem_cache_refill_sheaf().
func (s *Sheaf) Refill(n int) error {
	k := s.c.c
	if n <= 0 || n > 1<<16 {
		return fmt.Errorf("%w: cache %q: sheaf size %d", ErrInvalid, s.c.name, n)
	}
	s.sync()
	if n > len(s.sh.objs) {
		bigger := k.newSheaf(n)
		bigger.n = copy(bigger.objs, s.sh.objs[:s.sh.n])
		s.sh = bigger
	}
	err := k.refill(s.sh, k.a.localNode(0), 0, n)
	s.n, s.objs = s.sh.n, s.sh.objs
	return err
}

// Return gives the sheaf and its remaining objects back to the cache; the
// sheaf must not be used afterwards (if it is, Alloc returns nil and Free
// frees to the cache). Kernel: kmem_cache_return_sheaf().
func (s *Sheaf) Return() {
	if s.sh == nil {
		return
	}
	k := s.c.c
	s.sync()
	k.disposeSheaf(s.sh)
	s.sh, s.n, s.objs = &sheaf{}, 0, nil
	k.a.statUnpinned(k, SheafReturn)
}
