package mem

import (
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
)

// Page is the metadata of one 4 KiB page: the kernel's struct page. Every
// present block has one Page per page, reached from an address by
// arithmetic (PageOf). Only Private is the owner's.
type Page struct {
	// state packs kind (bits 0-3), order (4-7) and the allocation's GFP
	// flags (8-15). Only the head page of a free buddy chunk or of an
	// allocation has a non-zero state; every other page reads pgNone.
	// Accessed with sync/atomic, except that the per-P fast paths use
	// plain accesses outside race builds (see stateFast).
	state uint32
	_     uint32
	// next, prev link a free head on its zone's free list (zone lock).
	next, prev *Page
	blk        *block
	mig        atomic.Pointer[migBox]
	// Private is the owner's data (slab keeps its *slab here on every
	// page of a slab). mem only clears it when the page is freed.
	Private unsafe.Pointer
}

type migBox struct{ m Migrator }

func (p *Page) loadState() uint32           { return atomic.LoadUint32(&p.state) }
func (p *Page) storeState(v uint32)         { atomic.StoreUint32(&p.state, v) }
func (p *Page) casState(old, v uint32) bool { return atomic.CompareAndSwapUint32(&p.state, old, v) }

const (
	pgNone  = 0 // tail of a chunk, or not in any allocator (offline)
	pgBuddy = 1 // head of a free chunk in the buddy allocator
	pgAlloc = 2 // head of an allocation
	pgPcp   = 3 // order-0 page on a per-P list

	kindMask  = 0xf
	orderBits = 4
	gfpShift  = 8
)

func mkState(kind uint32, order int, gfp GFP) uint32 {
	return kind | uint32(order)<<orderBits | uint32(gfp)<<gfpShift
}
func stKind(st uint32) uint32 { return st & kindMask }
func stOrder(st uint32) int   { return int(st>>orderBits) & 0xf }
func stGFP(st uint32) GFP     { return GFP(st >> gfpShift) }

// Order returns the order of the allocation p heads, or -1 if p is not
// the head page of an allocation.
func (p *Page) Order() int {
	st := p.loadState()
	if stKind(st) != pgAlloc {
		return -1
	}
	return stOrder(st)
}

// Allocated reports whether p is the head page of an allocation.
func (p *Page) Allocated() bool { return stKind(p.loadState()) == pgAlloc }

// Flags returns the GFP flags p was allocated with (0 if p is not an
// allocation's head).
func (p *Page) Flags() GFP {
	st := p.loadState()
	if stKind(st) != pgAlloc {
		return 0
	}
	return stGFP(st)
}

// Node returns the node of the block holding p.
func (p *Page) Node() int { return p.blk.node }

// Block returns the index of the block holding p.
func (p *Page) Block() int { return p.blk.index }

// Addr returns the address of the page p describes.
func (p *Page) Addr() uintptr { return p.blk.addr + uintptr(p.blk.pageIndex(p))<<PageShift }

// block is a memory block: the kernel's struct memory_block plus the
// struct pages of its range.
type block struct {
	index int
	node  int
	addr  uintptr
	dev   lockdep.Mutex // device lock: held across Online/Offline/Remove
	state atomic.Int32  // BlockState
	// zone is the zone the block is online in (nil while offline). Set
	// under mem_hotplug_lock (write) and the zone lock.
	zone atomic.Pointer[zone]
	// isolated: the block's free pages are not on any free list and
	// order-0 frees bypass the per-P lists. True while offline and going
	// offline. Written under the zone lock.
	isolated atomic.Bool
	// nrFree counts the block's pages in the buddy allocator, isolated
	// or not (zone lock).
	nrFree atomic.Int64
	pages  []Page
}

var pageSize = unsafe.Sizeof(Page{})

func (b *block) pageIndex(p *Page) int {
	return int((uintptr(unsafe.Pointer(p)) - uintptr(unsafe.Pointer(&b.pages[0]))) / pageSize)
}

func (b *block) pageAddr(i int) uintptr { return b.addr + uintptr(i)<<PageShift }

// PageOf returns the Page of the page holding addr, or nil if addr is
// outside the range or in a block that is not present. Lock-free: one
// atomic load and arithmetic. Kernel: virt_to_page()/pfn_to_online_page().
func (s *System) PageOf(addr uintptr) *Page {
	off := addr - s.base
	if off >= s.size {
		return nil
	}
	b := s.blocks[off>>s.blockShift].Load()
	if b == nil {
		return nil
	}
	return &b.pages[(off>>PageShift)&uintptr(s.pagesPerBlock-1)]
}

// PageNode returns the node of the block holding addr, or NumaNoNode.
// Kernel: page_to_nid(virt_to_page(addr)).
func (s *System) PageNode(addr uintptr) int {
	off := addr - s.base
	if off >= s.size {
		return NumaNoNode
	}
	if b := s.blocks[off>>s.blockShift].Load(); b != nil {
		return b.node
	}
	return NumaNoNode
}

// BlockOf returns the index of the present block holding addr, or -1.
// Kernel: memory_block_id(pfn_to_section_nr(pfn)).
func (s *System) BlockOf(addr uintptr) int {
	off := addr - s.base
	if off >= s.size {
		return -1
	}
	i := int(off >> s.blockShift)
	if s.blocks[i].Load() == nil {
		return -1
	}
	return i
}
