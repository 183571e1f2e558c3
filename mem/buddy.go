//go:build linux

// Zones and their buddy allocators: the Zone kinds, the zone type, and
// taking chunks off and putting them back on the free lists (split,
// merge, isolate).

package mem

import (
	"fmt"
	"sync/atomic"

	"github.com/hotslab/hotslab/lockdep"
)

// Zone is a memory zone of a node.
type Zone int

const (
	// ZoneNormal holds any allocation (kernel memory, slab pages).
	ZoneNormal Zone = iota
	// ZoneMovable holds only movable allocations (GFPMovable), so its
	// blocks can always be offlined once their pages are migrated.
	ZoneMovable
	nrZones
)

// String returns the kernel's zone name ("Normal", "Movable").
func (z Zone) String() string {
	switch z {
	case ZoneNormal:
		return "Normal"
	case ZoneMovable:
		return "Movable"
	}
	return fmt.Sprintf("Zone(%d)", int(z))
}

// zone is one zone of one node: a buddy allocator over the free pages of
// its online, non-isolated blocks. Kernel: struct zone.
type zone struct {
	node int
	kind Zone
	idx  int // node*nrZones + kind: its index in System.zones and in each perP.lists

	// lock is zone_lock, a leaf. It guards free, freeRep and the
	// next/prev links of the Pages on them, the pgBuddy and pgReporting
	// states of the zone's pages, and its blocks' isolated flags and
	// nrFree. An allocation's head changes
	// state without it (see Page.state).
	lock lockdep.Mutex
	// free[o] heads a doubly linked list of the unreported free chunks
	// of order o, freeRep[o] one of the reported ones (pgReported): the
	// pfn of the first head (Page.next, Page.prev link the rest), or
	// nilPFN. Allocations take from free[o] before freeRep[o] (resident
	// memory first), and the page reporter finds on free[o] what it has
	// not reported yet.
	free    [MaxOrder + 1]uint32
	freeRep [MaxOrder + 1]uint32
	// Written under lock; read lock-free by Stats and, as a hint, by the
	// allocator.
	nrFree      atomic.Int64 // pages on the free lists
	nrReported  atomic.Int64 // of them, pages of chunks marked pgReported
	nrReporting atomic.Int64 // free pages the page reporter holds off the lists
	managed     atomic.Int64 // pages of the zone's online blocks
	nrBlk       atomic.Int64 // online blocks
}

// list returns z's list of order o for a head with state st: free[o],
// or freeRep[o] if st is reported.
func (z *zone) list(st uint32, o int) *uint32 {
	if st&pgReported != 0 {
		return &z.freeRep[o]
	}
	return &z.free[o]
}

// push puts page i of block b, a free head of order o whose state is
// set, on z's list of its kind. Caller holds z.lock.
func (s *System) push(z *zone, b *block, i int, o int) {
	pfn := b.pfn + uint32(i)
	p := &b.pages[i]
	st := p.loadState()
	if st&pgReported != 0 {
		z.nrReported.Add(int64(1) << o)
	}
	head := z.list(st, o)
	p.prev = nilPFN
	p.next = *head
	if p.next != nilPFN {
		_, n := s.pfnPage(p.next)
		n.prev = pfn
	}
	*head = pfn
}

// unlink takes the free head p of order o (state still set) off z's
// list. Caller holds z.lock.
func (s *System) unlink(z *zone, p *Page, o int) {
	st := p.loadState()
	if st&pgReported != 0 {
		z.nrReported.Add(-int64(1) << o)
	}
	if p.prev != nilPFN {
		_, pp := s.pfnPage(p.prev)
		pp.next = p.next
	} else {
		*z.list(st, o) = p.next
	}
	if p.next != nilPFN {
		_, np := s.pfnPage(p.next)
		np.prev = p.prev
	}
	p.next, p.prev = nilPFN, nilPFN
}

// rmqueue takes a chunk of 2^order pages off the free lists, marks its
// head with st and returns its address (0: none free), and whether the
// chunk is known to read as zeros (it was carved from a reported chunk).
// The halves split off a reported chunk stay reported: their memory was
// not touched. Caller holds z.lock. Kernel: __rmqueue_smallest().
func (s *System) rmqueue(z *zone, order int, st uint32) (uintptr, bool) {
	for o := order; o <= s.blockOrder; o++ {
		pfn := z.free[o]
		if pfn == nilPFN {
			if pfn = z.freeRep[o]; pfn == nilPFN {
				continue
			}
		}
		b, p := s.pfnPage(pfn)
		rep := p.loadState() & pgReported
		s.unlink(z, p, o)
		i := int(p.idx)
		for o > order { // expand: give back the upper halves
			o--
			h := i + 1<<o
			b.pages[h].storeState(mkState(pgBuddy, o, 0) | rep)
			s.push(z, b, h, o)
		}
		p.storeState(st)
		n := int64(1) << order
		b.nrFree.Add(-n)
		z.nrFree.Add(-n)
		return b.pageAddr(i), rep != 0
	}
	return 0, false
}

// freeOne returns a chunk to the buddy allocator of its block's zone,
// merging it with free buddies. If the block is isolated the merged chunk
// stays off the free lists. The caller has made the chunk's head its own
// (state no longer pgAlloc or pgPcp for anybody else) and holds z.lock.
// Kernel: __free_one_page().
func (s *System) freeOne(z *zone, b *block, p *Page, order int) {
	s.freeChunk(z, b, int(p.idx), order, false)
}

// freeChunk is freeOne of the chunk at page i of b, reported or not (the
// page reporter puts back the chunks it reported). The merged chunk is
// reported only if every part of it was. A merged chunk of the reporting
// order or more that is not reported, on the free lists, asks the
// background reporter for a pass. Caller holds z.lock.
func (s *System) freeChunk(z *zone, b *block, i int, order int, reported bool) {
	iso := b.isolated.Load()
	b.pages[i].storeState(pgNone)
	n := int64(1) << order
	for o := order; o < s.blockOrder; o++ {
		bi := i ^ (1 << o)
		bp := &b.pages[bi]
		bst := bp.loadState()
		if stKind(bst) != pgBuddy || stOrder(bst) != o {
			break
		}
		if !iso {
			s.unlink(z, bp, o)
			z.nrFree.Add(-int64(1) << o)
		}
		reported = reported && bst&pgReported != 0
		bp.storeState(pgNone)
		i &= bi
		order = o + 1
	}
	st := mkState(pgBuddy, order, 0)
	if reported {
		st |= pgReported
	}
	b.pages[i].storeState(st)
	b.nrFree.Add(n)
	if !iso {
		s.push(z, b, i, order)
		z.nrFree.Add(int64(1) << order)
		if !reported && order >= int(s.reportOrder.Load()) {
			s.reportNotify()
		}
	}
}

// isolate takes the block's free chunks off the zone's free lists.
// Caller holds z.lock. Kernel: set_migratetype_isolate().
func (s *System) isolate(z *zone, b *block) {
	if b.isolated.Load() {
		return
	}
	b.isolated.Store(true)
	for i := 0; i < len(b.pages); {
		st := b.pages[i].loadState()
		switch stKind(st) {
		case pgBuddy:
			s.unlink(z, &b.pages[i], stOrder(st))
			z.nrFree.Add(-int64(1) << stOrder(st))
			i += 1 << stOrder(st)
		case pgAlloc, pgReporting:
			i += 1 << stOrder(st)
		default:
			i++
		}
	}
}

// unisolate puts the block's free chunks back on the free lists.
// Caller holds z.lock. Kernel: unset_migratetype_isolate().
func (s *System) unisolate(z *zone, b *block) {
	if !b.isolated.Load() {
		return
	}
	for i := 0; i < len(b.pages); {
		st := b.pages[i].loadState()
		switch stKind(st) {
		case pgBuddy:
			o := stOrder(st)
			s.push(z, b, i, o)
			z.nrFree.Add(int64(1) << o)
			if st&pgReported == 0 && o >= int(s.reportOrder.Load()) {
				s.reportNotify()
			}
			i += 1 << o
		case pgAlloc, pgReporting:
			i += 1 << stOrder(st)
		default:
			i++
		}
	}
	b.isolated.Store(false)
}
