// Bulk allocation and free (kmem_cache_alloc_bulk / kmem_cache_free_bulk).

package slab

import (
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// AllocBulk fills dst with objects, all or nothing: on failure the objects
// already taken are freed, dst is cleared and the error returned. Kernel:
// kmem_cache_alloc_bulk().
func (c *Cache) AllocBulk(dst []unsafe.Pointer) error {
	k := c.c
	if err := c.usable(); err != nil {
		return err
	}
	if err := k.shouldFail(c.name); err != nil {
		return err
	}
	if k.debug != 0 {
		for i := range dst {
			p, err := c.allocDebug(-1, 0)
			if err != nil {
				for _, q := range dst[:i] {
					c.Free(q)
				}
				clear(dst[:i])
				return err
			}
			dst[i] = p
		}
		return nil
	}
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
	if k.acct || k.initAlloc {
		// Only now, and only what this call allocated: on failure dst
		// holds the caller's old pointers (a Magazine's array), whose
		// objects are not ours — preparing them wrote into objects of
		// others (found by torture: patterns overwritten in other caches
		// after an AllocBulk of an accounted cache failed).
		for _, p := range dst {
			k.taken(uintptr(p))
		}
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
	if k.debug != 0 {
		for _, p := range objs { // one by one, each checked: a duplicate is "Object already free"
			c.Free(p)
		}
		return
	}
	node := k.bulkNode(objs)
	if k.initFree && node != -2 {
		for _, p := range objs {
			k.zeroObj(uintptr(p))
		}
	}
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
	}
	c.freeBulkSlow(objs, i)
}

// freeBulkSlow frees objs[i:] one by one (objs[:i] went into the P's
// sheaf): the rest of a batch that did not fit, or every object of a
// batch with a bad one, which is then reported while the good ones are
// freed.
func (c *Cache) freeBulkSlow(objs []unsafe.Pointer, i int) {
	var buf [256]uintptr
	set := newAddrSet(buf[:], len(objs))
	for _, p := range objs[:i] {
		set.insert(uintptr(p))
	}
	for _, p := range objs[i:] {
		if p == nil {
			continue
		}
		if set.insert(uintptr(p)) {
			c.c.a.invalidFree(c.name, uintptr(p), "double free (twice in one bulk free)")
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
// freelist, none nil): it returns their node if all are valid and of one
// node, -3 if valid but of several nodes, -2 if any is not. It takes the
// batch a run of one slab at a time (bulkRun): per object a compare, a
// mask and a bit for its index modulo 64. A batch of one slab with as
// many distinct bits as objects is distinct; any other batch is checked
// with a hash set.
func (k *kmemCache) bulkNode(objs []unsafe.Pointer) int {
	node := -1
	slabs := 0
	var collide uint64
	for i := 0; i < len(objs); slabs++ {
		addr := uintptr(objs[i])
		h := k.hdrAt(addr)
		if h == nil || h.cache != k.id {
			return -2
		}
		if node == -1 {
			node = int(h.node)
		} else if node != int(h.node) {
			node = -3
		}
		// The slab's freelist head, read once: a free racing with this
		// one may be missed, never a valid one refused.
		hh := k.hdrAt(h.base)
		if hh == nil {
			return -2 // a slab going away under a racing invalid free
		}
		headFree := uintptr(atomic.LoadUint32(&hh.freelist))
		var n int
		var seen uint64
		if k.sizeMask != 0 {
			n, seen = bulkRunPow2(objs[i:], h.base, k.slabBytesOf(h), k.sizeMask, k.recip, headFree)
		} else {
			n, seen = k.bulkRun(objs[i:], h.base, k.slabBytesOf(h), headFree)
		}
		if n == 0 {
			return -2
		}
		i += n
		if bits.OnesCount64(seen) != n {
			collide = 1 // two objects share an index modulo 64
		}
	}
	if (slabs > 1 || collide != 0) && !distinct(objs) {
		return -2
	}
	return node
}

// bulkRunPow2 takes the objects at the start of objs that lie in the slab
// at base, of a cache whose object size is mask+1, and returns how many
// (0 if one is not an object start or is the slab's freelist head) and
// the set of their indexes modulo 64 (as many bits as objects: distinct).
// Kept out of line so its few loop variables stay in registers.
//
//go:noinline
func bulkRunPow2(objs []unsafe.Pointer, base, slabBytes, mask uintptr, recip uint64, headFree uintptr) (n int, seen uint64) {
	for i, p := range objs {
		off := uintptr(p) - base
		if off >= slabBytes {
			return i, seen
		}
		if off&mask != 0 || off+1 == headFree {
			return 0, 0
		}
		seen |= 1 << ((uint64(off) * recip >> 32) & 63)
	}
	return len(objs), seen
}

// bulkRun is bulkRunPow2 for the other sizes (objStart's reciprocal
// division).
//
//go:noinline
func (k *kmemCache) bulkRun(objs []unsafe.Pointer, base, slabBytes, headFree uintptr) (n int, seen uint64) {
	recip, size := k.recip, uintptr(k.size)
	for i, p := range objs {
		off := uintptr(p) - base
		if off >= slabBytes {
			return i, seen
		}
		idx := uintptr(uint64(off) * recip >> 32)
		if idx*size != off || off+1 == headFree {
			return 0, 0
		}
		seen |= 1 << (idx & 63)
	}
	return len(objs), seen
}

// distinct reports whether the addresses of objs are distinct.
func distinct(objs []unsafe.Pointer) bool {
	var buf [256]uintptr
	set := newAddrSet(buf[:], len(objs))
	for _, p := range objs {
		if set.insert(uintptr(p)) {
			return false
		}
	}
	return true
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
