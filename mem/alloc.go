//go:build linux

// The page allocator's entry points: GFP flags, AllocPages (per-P fast
// path, then the zonelist) and FreePages.

package mem

import (
	"syscall"

	"github.com/hotslab/hotslab/internal/percpu"
)

// GFP are allocation flags. Kernel: gfp_t.
type GFP uint32

const (
	// GFPMovable allows placement in ZoneMovable (tried first). Pages
	// allocated with it may only be offlined away if their owner
	// registers a Migrator or frees them; Offline waits (retries) for
	// such pages instead of failing. Kernel: __GFP_MOVABLE.
	GFPMovable GFP = 1 << iota
	// GFPThisNode forbids falling back to other nodes. Kernel:
	// __GFP_THISNODE.
	GFPThisNode
	// GFPZero zeroes the pages. Kernel: __GFP_ZERO.
	GFPZero

	gfpMask = GFPMovable | GFPThisNode | GFPZero
)

// AllocPages allocates 2^order contiguous pages and returns the address of
// the first. node is the preferred node (NumaNoNode: the calling P's
// node); the zonelist is tried in order — on each node ZoneMovable first
// if gfp has GFPMovable, then ZoneNormal — local node first, then the
// others, unless GFPThisNode. Errors wrap syscall.ENOMEM (nothing free) or
// syscall.EINVAL (bad order, node or flags).
//
// Order-0 allocations come from the calling P's page list for the first
// zone of the zonelist when it has pages: one pin, no atomic
// read-modify-write, no lock. It never takes mem_hotplug_lock or
// device_hotplug_lock. Kernel: __alloc_pages() / rmqueue_pcplist().
func (s *System) AllocPages(node int, order int, gfp GFP) (uintptr, error) {
	if s.failPage.Active() && order >= 0 && order <= MaxOrder && gfp&^gfpMask == 0 {
		// (A bad request is EINVAL, not a use of the fault's times.)
		if err := s.shouldFailPage(order); err != nil {
			return 0, err
		}
	}
	if order == 0 && gfp&^gfpMask == 0 {
		pid := percpu.Pin()
		if pid < len(s.pcp) {
			n := node
			if n == NumaNoNode {
				n = s.localNode[pid]
			}
			pp := &s.pcp[pid]
			if uint(n) < uint(s.nodes) && pp.stolen.Load() == 0 {
				zi := n * int(nrZones)
				if gfp&GFPMovable != 0 {
					zi += int(ZoneMovable)
				}
				l := &pp.lists[zi]
				if c := pload(&l.count); c > 0 {
					addr := pload(&l.pages[c-1])
					b, pg := s.lookup(addr)
					if !b.isolated.Load() {
						pstore(&l.count, c-1)
						setStateFast(pg, mkState(pgAlloc, 0, gfp&GFPMovable))
						pstore(&pp.allocs, pload(&pp.allocs)+1)
						percpu.Unpin()
						if gfp&GFPZero != 0 {
							clear(s.bytes(addr, PageSize))
						}
						return addr, nil
					}
				}
			}
		}
		percpu.Unpin()
	}
	return s.allocSlow(node, order, gfp)
}

func (s *System) allocSlow(node int, order int, gfp GFP) (uintptr, error) {
	if order < 0 || order > MaxOrder {
		return 0, errnoErr(syscall.EINVAL, "bad order %d", order)
	}
	if gfp&^gfpMask != 0 {
		return 0, errnoErr(syscall.EINVAL, "bad gfp flags %#x", uint32(gfp))
	}
	if node == NumaNoNode {
		pid := percpu.Pin()
		node = s.LocalNode(pid)
		percpu.Unpin()
	}
	if node < 0 || node >= s.nodes {
		return 0, errnoErr(syscall.EINVAL, "bad node %d", node)
	}
	addr, zero := s.allocWait(node, order, gfp)
	if addr == 0 {
		return 0, errnoErr(syscall.ENOMEM, "no free pages of order %d for node %d", order, node)
	}
	s.slowAllocs.Add(1)
	if gfp&GFPZero != 0 && !zero {
		clear(s.bytes(addr, PageSize<<order))
	}
	return addr, nil
}

// allocWait is allocFromZonelist that does not fail for want of the
// chunks the page reporter holds off the free lists: if the attempt
// failed while a reporting batch was out (or one began or ended during
// the attempt), it waits for the batch to end (page_reporting_mutex) and
// tries again.
func (s *System) allocWait(node, order int, gfp GFP) (uintptr, bool) {
	for {
		seq := s.reportSeq.Load()
		a, zero := s.allocFromZonelist(node, order, gfp)
		if a != 0 || (s.reportBusy.Load() == 0 && s.reportSeq.Load() == seq) {
			return a, zero
		}
		s.reportWaits.Add(1)
		s.reportMu.Lock() // the batch out ends under it
		s.reportMu.Unlock()
	}
}

// allocFromZonelist takes 2^order pages from the first zone of node's
// zonelist that has them (0: none) and reports whether they are known to
// read as zeros (carved from a reported chunk).
func (s *System) allocFromZonelist(node, order int, gfp GFP) (uintptr, bool) {
	mv := 0
	if gfp&GFPMovable != 0 {
		mv = 1
	}
	zl := s.zonelists[node][mv]
	st := mkState(pgAlloc, order, gfp&GFPMovable)
	for _, z := range zl {
		if gfp&GFPThisNode != 0 && z.node != node {
			break
		}
		if order == 0 {
			if a := s.pcpPop(z, gfp&GFPMovable); a != 0 {
				return a, false
			}
		}
		if z.nrFree.Load() < int64(1)<<order {
			continue
		}
		if order > 0 {
			z.lock.Lock()
			a, zero := s.rmqueue(z, order, st)
			z.lock.Unlock()
			if a != 0 {
				return a, zero
			}
			continue
		}
		// Refill: take a batch, keep one, give the rest to this P.
		var buf [pcpBatch]uintptr
		n := 0
		zero := false
		z.lock.Lock()
		for n < pcpBatch {
			a, zr := s.rmqueue(z, 0, mkState(pgPcp, 0, 0))
			if a == 0 {
				break
			}
			if n == 0 {
				zero = zr
			}
			buf[n] = a
			n++
		}
		z.lock.Unlock()
		if n == 0 {
			continue
		}
		a := buf[0]
		s.PageOf(a).storeState(st)
		if left := s.pcpPush(z, buf[1:n]); left > 0 {
			s.freeBatch(z, buf[1:1+left])
		}
		return a, zero
	}
	return 0, false
}

// FreePages frees the allocation of 2^order pages at addr. If addr is not
// the head of an allocation of that order (a foreign pointer, a tail page,
// a wrong order, a double free) it returns an error wrapping
// syscall.EINVAL and changes nothing. Freeing into a block that is being
// offlined is allowed: the pages become free and isolated. It clears the
// pages' Owner words and Migrator. Order-0 frees go to the calling P's list
// unless the block is isolated, the page has a Migrator, or the list is
// full or being drained. Kernel:
// __free_pages() / free_unref_page().
func (s *System) FreePages(addr uintptr, order int) error {
	b, pg := s.lookup(addr)
	if pg == nil || addr&(PageSize-1) != 0 || order < 0 || order > MaxOrder {
		return errnoErr(syscall.EINVAL, "free of %#x order %d: not an allocation", addr, order)
	}
	st := pg.loadState()
	if stKind(st) != pgAlloc || stOrder(st) != order {
		return errnoErr(syscall.EINVAL, "free of %#x order %d: not an allocation of that order", addr, order)
	}
	if order == 0 && st&pgMigrator == 0 {
		z := b.zone.Load()
		pid := percpu.Pin()
		if pid < len(s.pcp) && z != nil && !b.isolated.Load() {
			pp := &s.pcp[pid]
			l := &pp.lists[z.idx]
			if pp.stolen.Load() != 0 {
				percpu.Unpin()
				return s.freeSlow(b, pg, addr, order)
			}
			if c := pload(&l.count); c < pcpHigh {
				if !claimFast(pg, st, mkState(pgPcp, 0, 0)) {
					percpu.Unpin()
					return errnoErr(syscall.EINVAL, "free of %#x: concurrent free", addr)
				}
				pg.Owner = [4]uint64{}
				pstore(&l.pages[c], addr)
				pstore(&l.count, c+1)
				pstore(&pp.frees, pload(&pp.frees)+1)
				percpu.Unpin()
				return nil
			}
		}
		percpu.Unpin()
	}
	return s.freeSlow(b, pg, addr, order)
}

func (s *System) freeSlow(b *block, pg *Page, addr uintptr, order int) error {
	z := b.zone.Load()
	if z == nil {
		return errnoErr(syscall.EINVAL, "free of %#x: block offline", addr)
	}
	// Own the head first, so that a concurrent double free fails.
	var st uint32
	for {
		st = pg.loadState()
		if stKind(st) != pgAlloc || stOrder(st) != order {
			return errnoErr(syscall.EINVAL, "free of %#x order %d: not an allocation of that order", addr, order)
		}
		if pg.casState(st, mkState(pgPcp, 0, 0)) {
			break
		}
	}
	clearOwners(pg, order)
	if st&pgMigrator != 0 {
		// Before the page can be reallocated (and get a new entry).
		s.migs.Delete(addr)
	}
	s.slowFrees.Add(1)
	if order == 0 && !b.isolated.Load() {
		// The list was full (or stolen): move a batch to the buddy
		// allocator together with this page.
		var buf [pcpBatch + 1]uintptr
		n := s.pcpTake(z, buf[:pcpBatch])
		buf[n] = addr
		s.freeBatch(z, buf[:n+1])
		return nil
	}
	s.freeToBuddy(b, pg, order)
	return nil
}
