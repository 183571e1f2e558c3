// Bulk allocation and free (kmem_cache_alloc_bulk / kmem_cache_free_bulk).

package slab

import (
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/mem"
)

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
