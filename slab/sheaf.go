package slab

import (
	"fmt"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/mem"
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

// AllocBulk fills dst with objects, all or nothing: on failure the objects
// already taken are freed and the error returned. Kernel:
// kmem_cache_alloc_bulk().
func (c *Cache) AllocBulk(dst []unsafe.Pointer) error {
	k := c.c
	n := k.bulkFromSheaf(dst)
	for n < len(dst) {
		p, err := c.allocSlow(mem.NumaNoNode, 0)
		if err != nil {
			c.FreeBulk(dst[:n])
			clear(dst[:n])
			return err
		}
		dst[n] = p
		n++
		n += k.bulkFromSheaf(dst[n:])
	}
	return nil
}

func (k *cache) bulkFromSheaf(dst []unsafe.Pointer) int {
	n := 0
	pid := percpu.Pin()
	if k.flushing.Load() == 0 && uint(pid) < uint(len(k.pcpu)) {
		pc := &k.pcpu[pid]
		raceAcquire(unsafe.Pointer(pc))
		if pc.main != nil {
			n = min(len(dst), pc.n)
			copy(addrs(dst[:n]), pc.objs[pc.n-n:pc.n])
			pc.n -= n
			statAdd(&pc.stat[AllocBulk], uint64(n))
		}
		raceReleaseMerge(unsafe.Pointer(pc))
	}
	percpu.Unpin()
	return n
}

// FreeBulk frees every object of objs. Kernel: kmem_cache_free_bulk().
func (c *Cache) FreeBulk(objs []unsafe.Pointer) {
	k := c.c
	node := k.bulkNode(objs)
	i := 0
	if node >= 0 {
		pid := percpu.Pin()
		if k.flushing.Load() == 0 && uint(pid) < uint(len(k.pcpu)) {
			pc := &k.pcpu[pid]
			raceAcquire(unsafe.Pointer(pc))
			if pc.main != nil && int(k.memNode[pid].Load()) == node {
				i = min(len(objs), len(pc.objs)-pc.n)
				copy(pc.objs[pc.n:pc.n+i], addrs(objs[:i]))
				pc.n += i
				statAdd(&pc.stat[FreeBulk], uint64(i))
			}
			raceReleaseMerge(unsafe.Pointer(pc))
		}
		percpu.Unpin()
	}
	// The rest (or everything, if some pointer is bad: each bad one is
	// then reported and the good ones freed) one by one.
	for _, p := range objs[i:] {
		c.Free(p)
	}
}

// addrs views objects as their addresses (same size and layout; hotslab
// objects are not Go memory, so no write barrier is skipped).
func addrs(objs []unsafe.Pointer) []uintptr {
	return unsafe.Slice((*uintptr)(unsafe.Pointer(unsafe.SliceData(objs))), len(objs))
}

// bulkNode validates objs as objects of k: it returns their node if all
// are valid and of one node, -3 if valid but of several nodes, -2 if any
// is not an object of k. The slab of the previous object is remembered,
// so a batch from few slabs costs a compare and a mask per object.
func (k *cache) bulkNode(objs []unsafe.Pointer) int {
	id, mask, slabBytes := k.id, k.sizeMask, k.slabBytes
	var base uintptr
	off := ^uintptr(0)
	node := -1
	for _, p := range objs {
		addr := uintptr(p)
		if off = addr - base; off >= slabBytes || base == 0 {
			h := k.hdrAt(addr)
			if h == nil || h.cache != id {
				return -2
			}
			if base = h.base; node == -1 {
				node = int(h.node)
			} else if node != int(h.node) {
				node = -3
			}
			if off = addr - base; off >= slabBytes {
				return -2
			}
		}
		if mask != 0 {
			if off&mask != 0 {
				return -2
			}
		} else if !k.objStart(base, addr) {
			return -2
		}
	}
	return node
}
