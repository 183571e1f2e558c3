// Bulk allocation and free (kmem_cache_alloc_bulk / kmem_cache_free_bulk).

package slab

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// AllocBulk fills dst with objects, all or nothing: on failure the objects
// already taken are freed, dst is cleared and the error returned. Kernel:
// kmem_cache_alloc_bulk().
func (c *Cache) AllocBulk(dst []unsafe.Pointer) error {
	k := c.c
	if err := c.usable(); err != nil {
		return err
	}
	n := k.bulkFromSheaf(dst)
	for n < len(dst) {
		p, err := c.allocSlow()
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

func (k *kmemCache) bulkFromSheaf(dst []unsafe.Pointer) int {
	n := 0
	pc, _ := k.pin()
	if pc != nil {
		n = min(len(dst), pc.n)
		copy(addrs(dst[:n]), pc.objs[pc.n-n:pc.n])
		pc.n -= n
		statAdd(&pc.stat[AllocBulk], uint64(n))
	}
	unpin(pc)
	return n
}

// FreeBulk frees every object of objs; nil entries are skipped. Each
// pointer is validated as Free validates it, and a pointer that appears
// twice in objs (or is on top of the P's sheaf, or heads its slab's
// freelist) is refused as a double free; the valid ones are freed either
// way. A batch of valid objects of the P's node goes into the P's sheaf
// with one copy. Kernel: kmem_cache_free_bulk().
func (c *Cache) FreeBulk(objs []unsafe.Pointer) {
	if len(objs) == 0 {
		return
	}
	k := c.c
	var buf [256]uintptr
	set := newAddrSet(buf[:], len(objs))
	node := k.bulkNode(objs, &set)
	i := 0
	if node >= 0 && !c.dead.Load() {
		pc, pid := k.pin()
		if pc != nil && pc.main != nil && k.nodeOfP(pid) == node && (pc.n == 0 || pc.objs[pc.n-1] != uintptr(objs[0])) {
			i = min(len(objs), len(pc.objs)-pc.n)
			copy(pc.objs[pc.n:pc.n+i], addrs(objs[:i]))
			pc.n += i
			statAdd(&pc.stat[FreeBulk], uint64(i))
		}
		unpin(pc)
		if i == len(objs) {
			return
		}
		set.reset()
		for _, p := range objs[:i] {
			set.insert(uintptr(p))
		}
	} else {
		set.reset()
	}
	// The rest (or everything, if some pointer is bad: each bad one is
	// then reported and the good ones freed) one by one.
	for _, p := range objs[i:] {
		if p == nil {
			continue
		}
		if set.insert(uintptr(p)) {
			k.a.invalidFree(c.name, uintptr(p), "double free (twice in one bulk free)")
			continue
		}
		c.Free(p)
	}
}

// addrs views objects as their addresses (same size and layout; hotslab
// objects are not Go memory, so no write barrier is skipped).
func addrs(objs []unsafe.Pointer) []uintptr {
	return unsafe.Slice((*uintptr)(unsafe.Pointer(unsafe.SliceData(objs))), len(objs))
}

// bulkNode validates objs as distinct allocated objects of k (as far as
// the free path can tell: no object twice, none heading its slab's
// freelist, none nil), recording them in set: it returns their node if
// all are valid and of one node, -3 if valid but of several nodes, -2 if
// any is not. The slab of the previous object is remembered, so a batch
// from few slabs costs a compare and a mask per object, plus the set.
func (k *kmemCache) bulkNode(objs []unsafe.Pointer, set *addrSet) int {
	id, mask, slabBytes := k.id, k.sizeMask, k.slabBytes
	var base uintptr
	var head *slabHdr
	node := -1
	for _, p := range objs {
		addr := uintptr(p)
		off := addr - base
		if off >= slabBytes || base == 0 {
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
			head = k.hdrAt(base)
		}
		if mask != 0 {
			if off&mask != 0 {
				return -2
			}
		} else if !k.objStart(base, addr) {
			return -2
		}
		if atomic.LoadUint32(&head.freelist) == uint32(off)+1 || set.insert(addr) {
			return -2
		}
	}
	return node
}

// addrSet is a small open-addressing set of object addresses, for
// finding duplicates in a bulk free.
type addrSet struct {
	slots []uintptr
	shift uint
}

// newAddrSet returns a set for n addresses (at most half full) in buf (a
// zeroed array on the caller's stack) if it is large enough.
func newAddrSet(buf []uintptr, n int) addrSet {
	size := 16
	for size < 2*n {
		size *= 2
	}
	var s addrSet
	if size <= len(buf) {
		s.slots = buf[:size]
	} else {
		s.slots = make([]uintptr, size)
	}
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	return s
}

func (s *addrSet) reset() { clear(s.slots) }

// insert adds addr (not 0) and reports whether it was already there.
func (s *addrSet) insert(addr uintptr) bool {
	mask := uintptr(len(s.slots) - 1)
	i := uintptr(uint64(addr)*0x9E3779B97F4A7C15>>s.shift) & mask
	for {
		switch s.slots[i] {
		case 0:
			s.slots[i] = addr
			return false
		case addr:
			return true
		}
		i = (i + 1) & mask
	}
}
