package slab

import (
	"math/rand/v2"
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// ptr turns an address of hotslab memory into an unsafe.Pointer. The
// memory is off the Go heap (mmap'd), so the GC ignores such pointers.
func ptr(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

func loadWord(addr uintptr) uintptr { return *(*uintptr)(ptr(addr)) }

func storeWord(addr uintptr, v uintptr) { *(*uintptr)(ptr(addr)) = v }

// slabHdr is the kernel's struct slab, kept — as the kernel overlays struct
// slab on struct page — in the Owner words of the slab's pages. It is
// pointer-free: the garbage collector never sees a slab, however many
// there are. Every page of a slab carries cache, node, flags and base, so
// the free path validates a pointer from its own page; the remaining
// fields are used on the head page only and are guarded by the list_lock
// of the slab's node.
type slabHdr struct {
	cache uint32 // owning cache's id (Allocator.table); 0: not a slab page
	node  uint8
	flags uint8 // hdrLarge; constant while the page is owned
	// onList (head page only, list_lock): on its node's partial list.
	// A byte of its own, apart from the constant fields read unlocked.
	onList bool
	base   uintptr // address of the slab's first page
	// Head page only, list_lock:
	inuse    uint32 // objects not on the freelist
	freelist uint32 // offset+1 of the first free object; 0: none
	next     uint32 // partial list links: head pfns, nilPFN for none
	prev     uint32
}

const (
	hdrLarge = 1 << iota // head page of a large kmalloc (no cache)
	// hdrMin marks every page of a slab of the cache's fallback
	// geometry (minOrder, minObjects): the page allocator had no chunk
	// of the cache's order. Kernel: a slab of oo_min.
	hdrMin

	// largeID is the cache id of a large kmalloc's head page: no cache
	// has it, so a slab lookup fails the cache check without a special
	// case on the hot path.
	largeID = ^uint32(0)
	nilPFN  = ^uint32(0)
)

func init() {
	if unsafe.Sizeof(slabHdr{}) > unsafe.Sizeof(mem.Page{}.Owner) {
		panic("slab: struct slab does not fit in struct page's Owner words")
	}
}

// hdr returns the slab header kept in pg.
func hdr(pg *mem.Page) *slabHdr { return (*slabHdr)(unsafe.Pointer(&pg.Owner)) }

// The layout of mem.Page as the free path's validation needs it (and
// fast_amd64.s, through go_asm.h).
const (
	pageShift      = mem.PageShift
	pageSize       = mem.PageSize
	pageStructSize = unsafe.Sizeof(mem.Page{})
	pageOwnerOff   = unsafe.Offsetof(mem.Page{}.Owner)
)

// hdrAt returns the slab header slot of addr's page for any addr in the
// System's range, nil outside it: mem.PageMap.PageAt from the cache's own
// copy of the range, without a presence check. The header of a page of an
// absent block, or of a page that is not a slab page, reads cache == 0,
// which is no cache's id, so comparing h.cache with an id validates
// both. Kernel: virt_to_slab() without pfn_valid().
func (k *kmemCache) hdrAt(addr uintptr) *slabHdr {
	off := addr - k.memBase
	if off >= k.memSize {
		return nil
	}
	return (*slabHdr)(unsafe.Add(k.vmemmap, (off>>pageShift)*pageStructSize+pageOwnerOff))
}

// headHdr returns the header of the slab whose pages start at base.
func (a *Allocator) headHdr(base uintptr) *slabHdr { return hdr(a.sys.PageOf(base)) }

// pfnHdr returns the header of the slab whose head page is pfn.
func (a *Allocator) pfnHdr(pfn uint32) *slabHdr { return hdr(a.sys.PFNPage(pfn)) }

// slabList is a cacheNode's partial list, linked through the head pages'
// headers by pfn.
type slabList struct {
	head uint32
	n    int
}

func (l *slabList) push(a *Allocator, s *slabHdr) {
	pfn := a.sys.PFNOf(s.base)
	s.prev, s.next = nilPFN, l.head
	if l.head != nilPFN {
		a.pfnHdr(l.head).prev = pfn
	}
	l.head = pfn
	s.onList = true
	l.n++
}

func (l *slabList) remove(a *Allocator, s *slabHdr) {
	if s.prev != nilPFN {
		a.pfnHdr(s.prev).next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nilPFN {
		a.pfnHdr(s.next).prev = s.prev
	}
	s.next, s.prev = nilPFN, nilPFN
	s.onList = false
	l.n--
}

// first returns the first slab on the list, or nil.
func (l *slabList) first(a *Allocator) *slabHdr {
	if l.head == nilPFN {
		return nil
	}
	return a.pfnHdr(l.head)
}

// nextOf returns the slab after s on the list, or nil.
func (a *Allocator) nextOf(s *slabHdr) *slabHdr {
	if s.next == nilPFN {
		return nil
	}
	return a.pfnHdr(s.next)
}

// The free pointer is stored XOR-ed with a per-cache random value and its
// own address (CONFIG_SLAB_FREELIST_HARDENED), so a stray write does not
// redirect the freelist to an attacker's address.
func (k *kmemCache) getFree(obj uintptr) uintptr {
	fp := obj + k.fpOffset
	return loadWord(fp) ^ k.random ^ fp
}

func (k *kmemCache) setFree(obj, next uintptr) {
	fp := obj + k.fpOffset
	storeWord(fp, next^k.random^fp)
}

// popFree takes the first object off s's freelist (list_lock held; the
// freelist is not empty).
func (k *kmemCache) popFree(s *slabHdr) uintptr {
	obj := s.base + uintptr(s.freelist-1)
	if next := k.getFree(obj); next != 0 {
		atomic.StoreUint32(&s.freelist, uint32(next-s.base)+1)
	} else {
		atomic.StoreUint32(&s.freelist, 0)
	}
	return obj
}

// pushFree puts obj at the head of s's freelist (list_lock held).
func (k *kmemCache) pushFree(s *slabHdr, obj uintptr) {
	var next uintptr
	if s.freelist != 0 {
		next = s.base + uintptr(s.freelist-1)
	}
	k.setFree(obj, next)
	atomic.StoreUint32(&s.freelist, uint32(obj-s.base)+1)
}

// headsFreelist is freelistHead for an object at offset off of the slab
// whose struct page (of the object's page) holds h: in the slab's first
// page the head page is h's own, else off/page struct pages before it.
func headsFreelist(h *slabHdr, off uintptr) bool {
	head := h
	if off >= pageSize {
		head = (*slabHdr)(unsafe.Add(unsafe.Pointer(h), -int(off>>pageShift)*int(pageStructSize)))
	}
	return atomic.LoadUint32(&head.freelist) == uint32(off)+1
}

// freelistHead reports whether addr, an object of the slab at base, heads
// the slab's freelist: it was the last object freed to the slab and is
// free, so freeing it again is a double free (the hardened freelist's
// check, set_freepointer()'s BUG_ON(object == fp), done before the object
// reaches a sheaf). Read without list_lock: the head may change the next
// instant, which can only make the check miss a double free racing with
// an allocation, never refuse a valid free (an allocated object is on no
// freelist).
func (k *kmemCache) freelistHead(base, addr uintptr) bool {
	h := k.hdrAt(base)
	return h != nil && atomic.LoadUint32(&h.freelist) == uint32(addr-base)+1
}

// slabOf returns the head header of the slab holding addr, or nil with the
// reason. Kernel: virt_to_slab().
func (a *Allocator) slabOf(addr uintptr) (*slabHdr, string) {
	pg := a.sys.PageOf(addr)
	if pg == nil {
		return nil, "pointer is not in hotslab memory"
	}
	h := hdr(pg)
	switch {
	case h.cache == 0:
		return nil, "not a slab page"
	case h.flags&hdrLarge != 0:
		return nil, "a large kmalloc allocation, not a slab object"
	}
	if h.base != addr&^(mem.PageSize-1) {
		h = a.headHdr(h.base)
	}
	return h, ""
}

// cacheOf returns the cache whose id is id, or nil.
func (a *Allocator) cacheOf(id uint32) *kmemCache {
	t := *a.table.Load()
	if uint64(id) >= uint64(len(t)) {
		return nil
	}
	return t[id]
}

// objStart reports whether addr is the start of an object slot of the
// slab whose header (of any of its pages) is h. Kernel: obj_to_index()
// with its reciprocal division (a mask for power-of-two slots).
func (k *kmemCache) objStart(h *slabHdr, addr uintptr) bool {
	off := addr - h.base
	if k.sizeMask != 0 {
		// A power of two divides its slab, of either geometry, and h is
		// the header of addr's own page: off is inside the slab.
		return off&k.sizeMask == 0
	}
	idx := (uint64(off) * k.recip) >> 32
	return idx < uint64(k.objectsOf(h)) && idx*uint64(k.size) == uint64(off)
}

// objectsOf, slabBytesOf and orderOf are the geometry of the slab whose
// header is h: the cache's, or its fallback's (hdrMin).
func (k *kmemCache) objectsOf(h *slabHdr) int {
	if h.flags&hdrMin != 0 {
		return k.minObjects
	}
	return k.objects
}

func (k *kmemCache) slabBytesOf(h *slabHdr) uintptr {
	if h.flags&hdrMin != 0 {
		return k.minSlabBytes
	}
	return k.slabBytes
}

func (k *kmemCache) orderOf(h *slabHdr) int {
	if h.flags&hdrMin != 0 {
		return k.minOrder
	}
	return k.order
}

// newSlab takes pages from the page allocator, writes the slab header into
// every page and threads the freelist through the objects, calling the
// constructor. Kernel: allocate_slab().
//
// When the page allocator has no free chunk of the cache's order, the
// slab takes the fallback geometry — the smallest order holding one
// object (order_fallback) — as the kernel's allocate_slab() falls back
// to oo_min: a slab of order 4 or 5 must not fail while smaller chunks
// are free.
func (k *kmemCache) newSlab(node int, gfp mem.GFP) (*slabHdr, error) {
	sys := k.a.sys
	order, objects, flags := k.order, k.objects, uint8(0)
	addr, err := sys.AllocPages(node, order, gfp)
	if err != nil && k.minOrder < k.order {
		order, objects, flags = k.minOrder, k.minObjects, hdrMin
		addr, err = sys.AllocPages(node, order, gfp)
		if err == nil {
			k.a.statUnpinned(k, OrderFallback)
		}
	}
	if err != nil {
		return nil, err
	}
	head := sys.PageOf(addr)
	tmpl := slabHdr{cache: k.id, node: uint8(sys.PageNode(addr)), flags: flags, base: addr, next: nilPFN, prev: nilPFN}
	pages := unsafe.Slice(head, 1<<order)
	for i := range pages {
		*hdr(&pages[i]) = tmpl
	}
	s := hdr(head)
	perm := k.perm
	if flags&hdrMin != 0 {
		perm = k.permMin
	}
	start := 0
	if perm != nil {
		start = rand.IntN(objects) // each slab from another point of the sequence
	}
	var next uintptr
	for i := objects - 1; i >= 0; i-- {
		j := i
		if perm != nil {
			j = int(perm[(start+i)%objects])
		}
		obj := addr + uintptr(j*k.size)
		if k.debug != 0 {
			k.debugInit(obj)
		}
		if k.ctor != nil {
			k.ctor(ptr(obj))
		}
		k.setFree(obj, next)
		next = obj
	}
	if k.acct {
		k.clearObjExts(addr, objects, uintptr(objects*k.size))
	}
	if k.debug != 0 {
		k.debugLock.Lock()
		k.debugSlabs[addr] = struct{}{}
		k.debugLock.Unlock()
	}
	atomic.StoreUint32(&s.freelist, uint32(next-addr)+1) // the first object of the (shuffled) order
	return s, nil
}

// discardSlab gives an empty slab's pages back (FreePages clears the
// headers). Kernel: discard_slab().
func (k *kmemCache) discardSlab(s *slabHdr) {
	if k.debug != 0 {
		k.debugLock.Lock()
		delete(k.debugSlabs, s.base)
		k.debugLock.Unlock()
	}
	if err := k.a.sys.FreePages(s.base, k.orderOf(s)); err != nil {
		k.a.log.Error("slab: freeing slab pages", "cache", k.name, "addr", s.base, "err", err)
	}
	k.a.statUnpinned(k, FreeSlab)
}
