//go:build linux

// Free page reporting: the memory of free buddy chunks of the reporting
// order and up goes back to the OS while the chunks stay in the buddy
// allocator, marked reported — synchronously (ReportFreePages) or from a
// background reporter a delay after such memory appeared; the knobs
// (SetReportingOrder, SetReportingDelay). Kernel: mm/page_reporting.c.

package mem

import (
	"context"
	"syscall"
	"time"
)

// reportBatch is the number of chunks one batch takes off the free lists
// at most: they are out of the allocator (allocations that find nothing
// else wait for them) while their memory is given back. Kernel:
// PAGE_REPORTING_CAPACITY.
const reportBatch = 32

// ReportingOrder returns the smallest order of the free chunks the page
// reporter gives back to the OS.
func (s *System) ReportingOrder() int { return int(s.reportOrder.Load()) }

// SetReportingOrder sets the smallest order of the free chunks the page
// reporter (ReportFreePages and the background reporter) gives back to the
// OS: 0 to the largest order of a block (BlockSize/PageSize pages, at most
// MaxOrder). Lower orders return more memory at the cost of more system
// calls and more page faults when the memory is reused. A bad order is
// refused with an error wrapping EINVAL and changes nothing. Kernel: the
// page_reporting.page_reporting_order parameter.
func (s *System) SetReportingOrder(order int) error {
	if order < 0 || order > s.blockOrder {
		return errnoErr(syscall.EINVAL, "bad reporting order %d (0..%d)", order, s.blockOrder)
	}
	if int(s.reportOrder.Swap(int32(order))) > order {
		// Chunks of the orders now included may wait unreported.
		s.reportNotify()
	}
	return nil
}

// ReportingDelay returns the background reporter's delay; negative: the
// background reporter is off.
func (s *System) ReportingDelay() time.Duration { return time.Duration(s.reportDelay.Load()) }

// SetReportingDelay sets how long the background page reporter waits,
// after a free left an unreported free chunk of the reporting order or
// more, before it reports the free memory that is not reported yet: 0
// reports at once, a negative delay turns the background reporter off
// (ReportFreePages still works). A request pending while it was off is
// served after the new delay. Kernel: PAGE_REPORTING_DELAY.
func (s *System) SetReportingDelay(d time.Duration) {
	if d < 0 {
		d = -1
	}
	s.reportDelay.Store(int64(d))
	s.reportKick()
}

// ReportFreePages gives the memory of every free chunk of the reporting
// order or more that is not reported yet back to the OS now, and returns
// how many bytes it gave back. It first drains the per-P lists (as
// DrainPages), so that freed order-0 pages merge into such chunks. The
// chunks stay in the buddy allocator, marked reported: reused, their
// memory faults back in as zeros (a GFPZero allocation of reported memory
// does not clear it). Blocks being offlined are skipped (their chunks are
// off the free lists). The bytes count each chunk given back, so a chunk
// of which a part had been given back before counts whole.
//
// It stops between batches when ctx is done, with what it gave back so
// far and an error wrapping EINTR; an error of madvise or fallocate is
// returned wrapped as well. It may be called from notifier callbacks and
// under callers' locks (slab_mutex), but not while pinned or with a zone
// lock held: it takes pcp_drain_mutex and waits for a grace period, then
// takes page_reporting_mutex and zone locks, and makes system calls.
// After Close it fails with EINVAL. Kernel: a page_reporting_process()
// pass run on demand.
func (s *System) ReportFreePages(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, errnoErr(syscall.EINTR, "report free pages: %v", err)
	}
	if s.reportClosed.Load() {
		return 0, errnoErr(syscall.EINVAL, "report free pages: system closed")
	}
	s.drainAllPages()
	return s.reportPass(ctx)
}

// reportNotify asks the background reporter for a pass (a free left an
// unreported chunk of the reporting order or more). It never blocks: it
// is called under zone locks. Kernel: page_reporting_notify_free().
func (s *System) reportNotify() {
	if s.reportReq.Load() != 0 || !s.reportReq.CompareAndSwap(0, 1) {
		return
	}
	s.reportKick()
}

// reportKick wakes the background reporter without blocking.
func (s *System) reportKick() {
	select {
	case s.reportWake <- struct{}{}:
	default:
	}
}

// reporter is the background reporter of s, one goroutine per System from
// New until Close cancels ctx; it closes done when it returns. Woken by a
// request (reportNotify), it waits the delay, clears the request and runs
// a pass; frees during the pass request the next one. While the delay is
// negative a request stays pending. A pass that fails (other than by
// cancellation) is logged and turns the background reporter off.
// Kernel: page_reporting_process(), a delayed work item.
func (s *System) reporter(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.reportWake:
		}
		for s.reportReq.Load() != 0 {
			d := s.ReportingDelay()
			if d < 0 {
				break // off: SetReportingDelay wakes us
			}
			if d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-s.reportWake:
					t.Stop()
					continue // the delay was set again: wait the new one
				case <-t.C:
				}
			}
			s.reportReq.Store(0)
			n, err := s.reportPass(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Warn("mem: free page reporting failed; background reporting off", "err", err)
				s.reportDelay.Store(-1)
			}
			s.log.Debug("mem: reported free pages", "bytes", n)
			if h := s.reportHook.Load(); h != nil {
				(*h)(n)
			}
		}
	}
}

// reportPass gives back every unreported free chunk of the reporting
// order or more, zone by zone and order by order, in batches. Merges
// while chunks are put back move them to higher orders, which the pass
// reaches later. A bound on the batches per order (the chunks of that
// order the zone could hold when the order's turn came) ends a pass that
// frees keep feeding.
func (s *System) reportPass(ctx context.Context) (int64, error) {
	var total int64
	for zi := range s.zones {
		z := &s.zones[zi]
		if z.managed.Load() == 0 {
			continue
		}
		for o := s.ReportingOrder(); o <= s.blockOrder; o++ {
			budget := z.nrFree.Load()>>o + 1
			for budget > 0 {
				if err := ctx.Err(); err != nil {
					return total, errnoErr(syscall.EINTR, "report free pages: %v", err)
				}
				n, bytes, err := s.reportChunks(z, o)
				total += bytes
				if err != nil {
					return total, err
				}
				if n < reportBatch {
					break // no unreported chunk of order o left
				}
				budget -= int64(n)
			}
		}
	}
	return total, nil
}

// reportChunks reports one batch: under page_reporting_mutex it takes up
// to reportBatch chunks of order o off z's list of unreported chunks
// (free[o]), marking them pgReporting so that no
// allocation, merge or offline touches them, drops the zone lock, gives
// their memory back to the OS, and puts them back with the zone lock
// retaken — reported, or not if that failed (then it stops at the failed
// chunk and returns the error). It returns the chunks taken and the bytes
// given back. A block isolated meanwhile gets its chunk back free and
// isolated; Offline waits for it (the block's nrFree excludes it while it
// is out). Kernel: page_reporting_cycle() and page_reporting_drain().
func (s *System) reportChunks(z *zone, o int) (int, int64, error) {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	if s.reportClosed.Load() {
		return 0, 0, errnoErr(syscall.EINVAL, "report free pages: system closed")
	}
	// An allocation that fails while the batch is out, or while it
	// starts or ends, waits for reportMu and retries (allocWait).
	s.reportBusy.Add(1)
	s.reportSeq.Add(1)
	defer func() {
		s.reportSeq.Add(1)
		s.reportBusy.Add(-1)
	}()
	size := int64(1) << o
	var pfns [reportBatch]uint32
	n := 0
	z.lock.Lock()
	for pfn := z.free[o]; pfn != nilPFN && n < reportBatch; {
		b, p := s.pfnPage(pfn)
		next := p.next
		s.unlink(z, p, o)
		p.storeState(mkState(pgReporting, o, 0))
		b.nrFree.Add(-size)
		z.nrFree.Add(-size)
		z.nrReporting.Add(size)
		pfns[n] = pfn
		n++
		pfn = next
	}
	z.lock.Unlock()
	if n == 0 {
		return 0, 0, nil
	}
	done := 0
	var err error
	for ; done < n; done++ {
		if err = s.release(s.PFNAddr(pfns[done]), uintptr(size)<<PageShift); err != nil {
			break
		}
	}
	if h := s.reportMidHook.Load(); h != nil {
		(*h)()
	}
	z.lock.Lock()
	for k := 0; k < n; k++ {
		b, p := s.pfnPage(pfns[k])
		z.nrReporting.Add(-size)
		s.freeChunk(z, b, int(p.idx), o, k < done)
	}
	z.lock.Unlock()
	bytes := int64(done) * size << PageShift
	s.reportedBytes.Add(uint64(bytes))
	return n, bytes, err
}

// startReporter starts the background reporter (New).
func (s *System) startReporter() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.reportCancel, s.reportDone = cancel, done
	go s.reporter(ctx, done)
}

// stopReporter stops the background reporter, waits for it, and makes
// every later batch refuse (Close). Caller holds device_hotplug_lock.
func (s *System) stopReporter() {
	if s.reportCancel != nil {
		s.reportCancel()
		<-s.reportDone
		s.reportCancel, s.reportDone = nil, nil
	}
	s.reportMu.Lock()
	s.reportClosed.Store(true)
	s.reportMu.Unlock()
}
