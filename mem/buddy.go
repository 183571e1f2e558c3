package mem

import (
	"sync/atomic"

	"github.com/hotslab/hotslab/lockdep"
)

// zone is one zone of one node: a buddy allocator over the free pages of
// its online, non-isolated blocks. Kernel: struct zone.
type zone struct {
	node int
	kind Zone
	idx  int // node*nrZones + kind: index of its per-P list

	lock lockdep.Mutex // zone_lock: a leaf; guards free and the blocks' page states
	// free[o] heads a doubly linked list of free chunks of order o.
	free [MaxOrder + 1]*Page
	// Read lock-free by Stats and as a hint by the allocator.
	nrFree  atomic.Int64 // pages on the free lists
	managed atomic.Int64 // pages of the zone's online blocks
	nrBlk   atomic.Int64 // online blocks
}

func (z *zone) push(p *Page, o int) {
	p.prev = nil
	p.next = z.free[o]
	if p.next != nil {
		p.next.prev = p
	}
	z.free[o] = p
}

func (z *zone) unlink(p *Page, o int) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		z.free[o] = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	}
	p.next, p.prev = nil, nil
}

// rmqueue takes a chunk of 2^order pages off the free lists and marks its
// head with st. Caller holds z.lock. Kernel: __rmqueue_smallest().
func (s *System) rmqueue(z *zone, order int, st uint32) *Page {
	for o := order; o <= s.blockOrder; o++ {
		p := z.free[o]
		if p == nil {
			continue
		}
		z.unlink(p, o)
		b := p.blk
		i := b.pageIndex(p)
		for o > order { // expand: give back the upper halves
			o--
			h := &b.pages[i+1<<o]
			h.storeState(mkState(pgBuddy, o, 0))
			z.push(h, o)
		}
		p.storeState(st)
		n := int64(1) << order
		b.nrFree.Add(-n)
		z.nrFree.Add(-n)
		return p
	}
	return nil
}

// freeOne returns a chunk to the buddy allocator of its block's zone,
// merging it with free buddies. If the block is isolated the merged chunk
// stays off the free lists. The caller has made the chunk's head its own
// (state no longer pgAlloc or pgPcp for anybody else) and holds z.lock.
// Kernel: __free_one_page().
func (s *System) freeOne(z *zone, p *Page, order int) {
	b := p.blk
	iso := b.isolated.Load()
	i := b.pageIndex(p)
	p.storeState(pgNone)
	n := int64(1) << order
	for o := order; o < s.blockOrder; o++ {
		bi := i ^ (1 << o)
		bp := &b.pages[bi]
		if bp.loadState() != mkState(pgBuddy, o, 0) {
			break
		}
		if !iso {
			z.unlink(bp, o)
			z.nrFree.Add(-int64(1) << o)
		}
		bp.storeState(pgNone)
		i &= bi
		order = o + 1
	}
	h := &b.pages[i]
	h.storeState(mkState(pgBuddy, order, 0))
	b.nrFree.Add(n)
	if !iso {
		z.push(h, order)
		z.nrFree.Add(int64(1) << order)
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
			z.unlink(&b.pages[i], stOrder(st))
			z.nrFree.Add(-int64(1) << stOrder(st))
			i += 1 << stOrder(st)
		case pgAlloc:
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
			z.push(&b.pages[i], stOrder(st))
			z.nrFree.Add(int64(1) << stOrder(st))
			i += 1 << stOrder(st)
		case pgAlloc:
			i += 1 << stOrder(st)
		default:
			i++
		}
	}
	b.isolated.Store(false)
}
