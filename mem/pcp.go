//go:build linux

// Per-P page lists: each P's stacks of free order-0 pages (perP), the
// pinned pop, push and take, and drainAllPages, which empties every P's
// lists after a grace period.

package mem

import (
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

const (
	pcpHigh  = 96 // a per-P list never holds more pages
	pcpBatch = 32 // pages moved at a time between a list and the buddy
)

// perP is one P's page cache: a stack of free order-0 pages per node and
// zone. Only the P's own pinned goroutine writes it, unless stolen is set:
// then only the drainer does (see drainAllPages); Stats reads the counts
// without stopping anyone (approximate). Kernel: struct per_cpu_pages.
//
// System.pcp is a []perP indexed by P id. The padding, computed from
// perPFields as in sync.Pool's poolLocal, makes perP a whole number of
// cache lines (checked below at compile time), so the words one P writes
// on every fast-path call (allocs, frees) never share a line with another
// P's stolen, allocs or frees. (The slice is a multiple of the line in
// size, so the allocator places it on a line boundary: every size class
// such a size rounds up to is a multiple of 64 bytes.)
type perP struct {
	perPFields
	_ [(percpu.CacheLine - unsafe.Sizeof(perPFields{})%percpu.CacheLine) % percpu.CacheLine]byte
}

// perPFields are the fields of perP, without its padding.
type perPFields struct {
	stolen atomic.Uint32
	allocs uintptr // fast-path successes, owner-written
	frees  uintptr
	// lists is this P's own allocation (node*nrZones + zone). It is at
	// least two lists, over 1 KiB, so its size class is a multiple of the
	// cache line and it shares no line with another P's lists.
	lists []pcpList
}

// perP is a whole number of cache lines: the build fails here otherwise.
var _ [0]struct{} = [unsafe.Sizeof(perP{}) % percpu.CacheLine]struct{}{}

// pcpList is one P's stack of free order-0 pages of one zone:
// pages[:count], top last.
type pcpList struct {
	count uintptr
	pages [pcpHigh]uintptr
}

// pcpPop pops a page of zone z from the calling P's list. It returns 0 if
// the list is empty, stolen, or the page popped belongs to an isolated
// block (that page is then returned to the buddy allocator).
func (s *System) pcpPop(z *zone, gfp GFP) uintptr {
	for {
		pid := percpu.Pin()
		if pid >= len(s.pcp) {
			percpu.Unpin()
			return 0
		}
		pp := &s.pcp[pid]
		if pp.stolen.Load() != 0 {
			percpu.Unpin()
			return 0
		}
		l := &pp.lists[z.idx]
		c := pload(&l.count)
		if c == 0 {
			percpu.Unpin()
			return 0
		}
		addr := pload(&l.pages[c-1])
		pstore(&l.count, c-1)
		b, pg := s.lookup(addr)
		if !b.isolated.Load() {
			pg.storeState(mkState(pgAlloc, 0, gfp))
			percpu.Unpin()
			return addr
		}
		percpu.Unpin()
		s.freeToBuddy(b, pg, 0)
	}
}

// pcpPush pushes pages (all of zone z, states pgPcp: a refill the caller
// took off the free lists) on the calling P's list, last first; it returns
// how many it could not take, pages[:n], for the caller to free. It stops
// at a page of an isolated block: the caller may have taken the batch
// before an Offline isolated the block and drained the lists, and checking
// inside the pinned section means such a page is never pushed after the
// drain (as FreePages' fast path never pushes one).
func (s *System) pcpPush(z *zone, pages []uintptr) int {
	pid := percpu.Pin()
	if pid >= len(s.pcp) || s.pcp[pid].stolen.Load() != 0 {
		percpu.Unpin()
		return len(pages)
	}
	l := &s.pcp[pid].lists[z.idx]
	c := pload(&l.count)
	for len(pages) > 0 && c < pcpHigh {
		a := pages[len(pages)-1]
		if b, _ := s.lookup(a); b.isolated.Load() {
			break
		}
		pstore(&l.pages[c], a)
		pages = pages[:len(pages)-1]
		c++
	}
	pstore(&l.count, c)
	percpu.Unpin()
	return len(pages)
}

// pcpTake pops up to len(buf) pages of zone z from the calling P's list.
func (s *System) pcpTake(z *zone, buf []uintptr) int {
	pid := percpu.Pin()
	if pid >= len(s.pcp) || s.pcp[pid].stolen.Load() != 0 {
		percpu.Unpin()
		return 0
	}
	l := &s.pcp[pid].lists[z.idx]
	c := pload(&l.count)
	n := 0
	for n < len(buf) && c > 0 {
		c--
		buf[n] = pload(&l.pages[c])
		n++
	}
	pstore(&l.count, c)
	percpu.Unpin()
	return n
}

// freeToBuddy frees one chunk whose head the caller owns into the buddy
// allocator under its zone lock.
func (s *System) freeToBuddy(b *block, pg *Page, order int) {
	z := b.zone.Load()
	z.lock.Lock()
	s.freeOne(z, b, pg, order)
	z.lock.Unlock()
}

// freeBatch frees order-0 pages of zone z under one zone lock.
func (s *System) freeBatch(z *zone, pages []uintptr) {
	if len(pages) == 0 {
		return
	}
	z.lock.Lock()
	for _, a := range pages {
		b, p := s.lookup(a)
		s.freeOne(z, b, p, 0)
	}
	z.lock.Unlock()
}

// drainAllPages empties every P's lists into the buddy allocator.
//
// A P's list is touched only by a goroutine pinned to that P, and only
// after it has seen stolen == 0 inside the same pinned section. The
// drainer sets stolen on every P, then waits for a grace period
// (percpu.Synchronize: every pinned section that might have missed the
// flag has ended), after which it owns all lists; it empties them, clears
// the flags and frees the pages under the zone locks. Owners that see the
// flag take the slow path (the buddy allocator) meanwhile. Called by
// Offline and Close under mem_hotplug_lock (write), and by DrainPages;
// never while pinned or holding a zone lock. Kernel: drain_all_pages().
func (s *System) drainAllPages() {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	for i := range s.pcp {
		s.pcp[i].stolen.Store(1)
	}
	percpu.Synchronize()
	per := make([][]uintptr, len(s.zones))
	for i := range s.pcp {
		for zi := range s.pcp[i].lists {
			l := &s.pcp[i].lists[zi]
			c := pload(&l.count)
			for j := uintptr(0); j < c; j++ {
				per[zi] = append(per[zi], pload(&l.pages[j]))
			}
			pstore(&l.count, 0)
		}
	}
	for i := range s.pcp {
		s.pcp[i].stolen.Store(0)
	}
	for zi, pages := range per {
		s.freeBatch(&s.zones[zi], pages)
	}
}

// DrainPages empties every P's page lists into the buddy allocator, so
// that Stats shows every free page in its zone's free lists. Kernel:
// drain_all_pages(NULL). It may be called from notifier callbacks, but
// not while pinned or with a zone lock held (it takes pcp_drain_mutex, then
// waits for a grace period, then takes zone locks).
func (s *System) DrainPages() { s.drainAllPages() }

// pcpCounts returns the pages on per-P lists per zone and the fast-path
// alloc/free counts (approximate while allocations run).
func (s *System) pcpCounts() (perZone []int64, allocs, frees uint64) {
	perZone = make([]int64, len(s.zones))
	for i := range s.pcp {
		pp := &s.pcp[i]
		allocs += uint64(pload(&pp.allocs))
		frees += uint64(pload(&pp.frees))
		for zi := range pp.lists {
			perZone[zi] += int64(pload(&pp.lists[zi].count))
		}
	}
	return
}
