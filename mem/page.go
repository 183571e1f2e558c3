//go:build linux

// Page, the struct page of every page of a present block, its state
// word, and the lock-free address ↔ Page ↔ pfn translations (PageOf,
// PageMap, PFNPage, PageNode, BlockOf).

package mem

import (
	"sync/atomic"
	"unsafe"
)

// Page is the metadata of one 4 KiB page: the kernel's struct page. Every
// present block has one Page per page, reached from an address by
// arithmetic (PageOf). Only Owner is the owner's.
//
// Pages live in the vmemmap, off the Go heap, where the garbage collector
// never looks, so Page holds no pointer at all: the free-list links are
// page frame numbers, the block follows from the Page's place in the
// vmemmap (pageBlock), Migrators live in a side table (System.migs)
// flagged by a state bit, and an owner keeps its metadata in Owner as
// numbers (slab keeps its struct slab there, as the kernel overlays struct
// slab on struct page).
type Page struct {
	// state packs kind (bits 0-3), order (4-7), the allocation's GFP
	// flags (8-15), pgMigrator (bit 16) and pgReported (bit 17). Only
	// the head page of a free buddy chunk, of a chunk the page reporter
	// holds, or of an allocation has a non-zero state; every other page
	// reads pgNone. Accessed with sync/atomic, except that the per-P
	// fast paths use plain accesses outside race builds (setStateFast,
	// claimFast). pgBuddy and pgReporting states change under the zone
	// lock; an
	// allocation's head is claimed by whoever changes its state first
	// (a compare-and-swap on the slow paths).
	state uint32
	// idx is the page's index in its block (constant).
	idx uint32
	// next, prev link a free head on its zone's free list (zone lock):
	// page frame numbers (pfn: (addr-Base)>>PageShift), nilPFN for none.
	next, prev uint32
	// Owner is the allocation owner's: four pointer-free words (the
	// union in struct page that struct slab overlays). FreePages zeroes
	// the Owner of every page of the allocation; mem never reads it.
	Owner [4]uint64
}

// nilPFN is the null free-list link. New limits the range to fewer than
// 2^32 pages, so no page has this pfn.
const nilPFN = ^uint32(0)

func (p *Page) loadState() uint32           { return atomic.LoadUint32(&p.state) }
func (p *Page) storeState(v uint32)         { atomic.StoreUint32(&p.state, v) }
func (p *Page) casState(old, v uint32) bool { return atomic.CompareAndSwapUint32(&p.state, old, v) }

const (
	pgNone  = 0 // tail of a chunk, or not in any allocator (offline)
	pgBuddy = 1 // head of a free chunk in the buddy allocator
	pgAlloc = 2 // head of an allocation
	pgPcp   = 3 // order-0 page on a per-P list
	// pgReporting heads a free chunk the page reporter took off the free
	// lists while it gives the chunk's memory back to the OS (zone lock
	// dropped); it goes back to the buddy allocator afterwards.
	// Kernel: a page isolated by page_reporting_cycle().
	pgReporting = 4

	kindMask  = 0xf
	orderBits = 4
	gfpShift  = 8
	gfpBits   = 0xff

	// pgMigrator marks an allocation's head that has an entry in
	// System.migs (SetMigrator). It is set and cleared only on pgAlloc
	// heads; every free overwrites it, so a free that saw it in the state
	// it claimed deletes the entry (on the slow path: never while pinned).
	pgMigrator = 1 << 16
	// pgReported marks a free buddy head (pgBuddy) whose whole chunk's
	// memory is not resident and reads as zeros: given back to the OS by
	// the page reporter, or never touched since its block was onlined. It
	// is set and cleared under the zone lock; an allocation overwrites
	// it. Kernel: PageReported.
	pgReported = 1 << 17
)

func mkState(kind uint32, order int, gfp GFP) uint32 {
	return kind | uint32(order)<<orderBits | uint32(gfp)<<gfpShift
}
func stKind(st uint32) uint32 { return st & kindMask }
func stOrder(st uint32) int   { return int(st>>orderBits) & 0xf }
func stGFP(st uint32) GFP     { return GFP(st>>gfpShift) & gfpBits }

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

// pageBlock returns the block holding p, from p's place in the vmemmap.
func (s *System) pageBlock(p *Page) *block {
	pfn := (uintptr(unsafe.Pointer(p)) - uintptr(s.vmemmap)) / pageSize
	return s.blocks[pfn>>(s.blockShift-PageShift)].Load()
}

// PageAddr returns the address of the page p describes; p must be a Page
// of a present block (from PageOf or PFNPage). Kernel: page_address().
func (s *System) PageAddr(p *Page) uintptr { return s.pageBlock(p).pageAddr(int(p.idx)) }

const pageSize = unsafe.Sizeof(Page{})

// PageOf returns the Page of the page holding addr, or nil if addr is
// outside the range or in a block that is not present. Lock-free: one
// atomic load and arithmetic. Kernel: virt_to_page()/pfn_to_online_page().
func (s *System) PageOf(addr uintptr) *Page { return s.pm.PageOf(addr) }

// PageMap is the lock-free address → Page translation of a System as a
// small value, for callers that keep a copy next to their own hot fields
// (slab keeps one in every cache) so that a lookup costs no load of the
// System. It stays valid until the System is closed.
type PageMap struct {
	base    uintptr
	size    uintptr
	shift   uint // block shift
	blocks  []atomic.Pointer[block]
	vmemmap unsafe.Pointer
}

// PageMap returns s's address → Page translation.
func (s *System) PageMap() PageMap { return s.pm }

// PageOf is System.PageOf.
func (m *PageMap) PageOf(addr uintptr) *Page {
	off := addr - m.base
	if off >= m.size || m.blocks[off>>(m.shift&63)].Load() == nil {
		return nil
	}
	return (*Page)(unsafe.Add(m.vmemmap, (off>>PageShift)*pageSize))
}

// PageAt returns the Page slot of addr for any addr in the range, nil
// outside it. Unlike PageOf it does not check that the block is present:
// the Page of an absent block (never added, or removed) reads as all
// zeros and must not be written. For lock-free validation that reads an
// Owner word and compares it with a non-zero value it expects (slab's
// free path): one comparison less and one dependent load less than
// PageOf. Kernel: virt_to_page() without pfn_valid().
func (m *PageMap) PageAt(addr uintptr) *Page {
	off := addr - m.base
	if off >= m.size {
		return nil
	}
	return (*Page)(unsafe.Add(m.vmemmap, (off>>PageShift)*pageSize))
}

// Base returns the first address of the range (System.Base).
func (m *PageMap) Base() uintptr { return m.base }

// Size returns the size in bytes of the range: MaxBlocks*BlockSize.
func (m *PageMap) Size() uintptr { return m.size }

// lookup is PageOf that also returns the block (nil, nil if none).
func (s *System) lookup(addr uintptr) (*block, *Page) {
	off := addr - s.base
	if off >= s.size {
		return nil, nil
	}
	b := s.blocks[off>>s.blockShift].Load()
	if b == nil {
		return nil, nil
	}
	return b, (*Page)(unsafe.Add(s.vmemmap, (off>>PageShift)*pageSize))
}

// PFNOf returns the page frame number of addr: its page's index in the
// range, (addr-Base)>>PageShift. addr must be in the range (Base, Size).
// Kernel: virt_to_pfn().
func (s *System) PFNOf(addr uintptr) uint32 { return uint32((addr - s.base) >> PageShift) }

// PFNAddr returns the address of page frame pfn. Kernel: pfn_to_virt().
func (s *System) PFNAddr(pfn uint32) uintptr { return s.base + uintptr(pfn)<<PageShift }

// PFNPage returns the Page of page frame pfn, or nil if pfn is outside
// the range or in a block that is not present. Kernel: pfn_to_page().
func (s *System) PFNPage(pfn uint32) *Page {
	if uintptr(pfn) >= s.size>>PageShift {
		return nil
	}
	if s.blocks[pfn>>(s.blockShift-PageShift)].Load() == nil {
		return nil
	}
	return (*Page)(unsafe.Add(s.vmemmap, uintptr(pfn)*pageSize))
}

// pfnPage returns the block and Page of page frame pfn, which must be in
// a present block (free-list links: the zone lock keeps them present).
func (s *System) pfnPage(pfn uint32) (*block, *Page) {
	b := s.blocks[pfn>>(s.blockShift-PageShift)].Load()
	return b, &b.pages[pfn&uint32(s.pagesPerBlock-1)]
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

// clearOwners zeroes the Owner words of the 2^order pages headed by head
// (an allocation never crosses a block, so they are consecutive Pages).
func clearOwners(head *Page, order int) {
	pages := unsafe.Slice(head, 1<<order)
	for i := range pages {
		pages[i].Owner = [4]uint64{}
	}
}
