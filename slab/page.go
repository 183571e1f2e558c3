package slab

import (
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// ptr turns an address of hotslab memory into an unsafe.Pointer. The
// memory is off the Go heap (mmap'd), so the GC ignores such pointers.
func ptr(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

func loadWord(addr uintptr) uintptr     { return *(*uintptr)(ptr(addr)) }
func storeWord(addr uintptr, v uintptr) { *(*uintptr)(ptr(addr)) = v }

// pageOwner is the first field of whatever a mem.Page's Private points to:
// a slab (large == 0) or a large kmalloc marker (large == order+1).
type pageOwner struct {
	large int32
}

// largeOwners mark the head page of a large kmalloc: slabs with no cache,
// so a slab lookup on them fails the cache check without a special case.
var largeOwners [mem.MaxOrder + 1]slab

func init() {
	for i := range largeOwners {
		largeOwners[i].large = int32(i + 1)
	}
}

// slab is one slab: 1<<order pages holding objects of one cache (the
// kernel's struct slab). Its fields except cache, base and node are
// guarded by the list_lock of its node.
type slab struct {
	pageOwner
	cache      *cache
	base       uintptr
	node       int
	inuse      int32   // objects not on the freelist
	freelist   uintptr // first free object; the next pointer lives in it
	next, prev *slab   // partial list
	onList     bool
}

// slabList is a cacheNode's partial list.
type slabList struct {
	head *slab
	n    int
}

func (l *slabList) push(s *slab) {
	s.prev, s.next = nil, l.head
	if l.head != nil {
		l.head.prev = s
	}
	l.head = s
	s.onList = true
	l.n++
}

func (l *slabList) remove(s *slab) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	}
	s.next, s.prev, s.onList = nil, nil, false
	l.n--
}

// The free pointer is stored XOR-ed with a per-cache random value and its
// own address (CONFIG_SLAB_FREELIST_HARDENED), so a stray write does not
// redirect the freelist to an attacker's address.
func (k *cache) getFree(obj uintptr) uintptr {
	fp := obj + k.fpOffset
	return loadWord(fp) ^ k.random ^ fp
}

func (k *cache) setFree(obj, next uintptr) {
	fp := obj + k.fpOffset
	storeWord(fp, next^k.random^fp)
}

// slabOf returns the slab holding addr, or nil with the reason.
// Kernel: virt_to_slab().
func (a *Allocator) slabOf(addr uintptr) (*slab, string) {
	pg := a.sys.PageOf(addr)
	if pg == nil {
		return nil, "pointer is not in hotslab memory"
	}
	po := (*pageOwner)(pg.Private)
	if po == nil {
		return nil, "not a slab page"
	}
	if po.large != 0 {
		return nil, "a large kmalloc allocation, not a slab object"
	}
	return (*slab)(unsafe.Pointer(po)), ""
}

// objStart reports whether addr is the start of an object slot of s.
// Kernel: obj_to_index() with its reciprocal division (a mask for
// power-of-two slots).
func (k *cache) objStart(s *slab, addr uintptr) bool {
	off := addr - s.base
	if k.sizeMask != 0 {
		return off&k.sizeMask == 0 && off < k.slabBytes
	}
	idx := (uint64(off) * k.recip) >> 32
	return idx < uint64(k.objects) && idx*uint64(k.size) == uint64(off)
}

// newSlab takes pages from the page allocator and threads the freelist
// through its objects, calling the constructor. Kernel: allocate_slab().
func (k *cache) newSlab(node int, gfp mem.GFP) (*slab, error) {
	sys := k.a.sys
	addr, err := sys.AllocPages(node, k.order, gfp)
	if err != nil {
		return nil, err
	}
	s := &slab{cache: k, base: addr, node: sys.PageNode(addr)}
	for i := 0; i < 1<<k.order; i++ {
		sys.PageOf(addr + uintptr(i)<<mem.PageShift).Private = unsafe.Pointer(s)
	}
	var next uintptr
	for i := k.objects - 1; i >= 0; i-- {
		obj := addr + uintptr(i*k.size)
		if k.ctor != nil {
			k.ctor(ptr(obj))
		}
		k.setFree(obj, next)
		next = obj
	}
	s.freelist = next
	return s, nil
}

// discardSlab gives an empty slab's pages back. Kernel: discard_slab().
func (k *cache) discardSlab(s *slab) {
	sys := k.a.sys
	for i := 0; i < 1<<k.order; i++ {
		sys.PageOf(s.base + uintptr(i)<<mem.PageShift).Private = nil
	}
	if err := sys.FreePages(s.base, k.order); err != nil {
		k.a.log.Error("slab: freeing slab pages", "cache", k.name, "addr", s.base, "err", err)
	}
	k.a.statUnpinned(k, FreeSlab)
}
