//go:build linux

// Tests of free page reporting: the memory of free chunks goes back to the
// OS (RSS and mincore) and comes back as zeros, the background reporter,
// the knobs and bad input, and reporting racing with allocation and
// hotplug.

package mem

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hangGuard bounds every wait of these tests: reached, it means a hang,
// not a slow machine.
const hangGuard = 2 * time.Minute

// residentPages returns how many of the PageSize pages of [addr, addr+n)
// are resident (mincore: for anonymous memory its own pages, for a memfd
// or file the page cache's). The range is widened to OS pages.
func residentPages(t testing.TB, s *System, addr, n uintptr) int {
	t.Helper()
	ps := uintptr(os.Getpagesize())
	lo, hi := addr&^(ps-1), (addr+n+ps-1)&^(ps-1)
	vec := make([]byte, (hi-lo)/ps)
	// x/sys/unix has no Mincore wrapper.
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(s.ptr(lo)), hi-lo, uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		t.Fatalf("mincore %#x+%d: %v", lo, hi-lo, e)
	}
	c := 0
	for _, v := range vec {
		if v&1 != 0 {
			c++
		}
	}
	return c * int(ps/PageSize)
}

// backings returns the backings to test, with the Config fields each
// needs (a file in a temporary directory for BackingFile).
func backings(t *testing.T) map[string]Config {
	return map[string]Config{
		"anon":  {Backing: BackingAnon},
		"memfd": {Backing: BackingMemfd},
		"file":  {Backing: BackingFile, BackingPath: filepath.Join(t.TempDir(), "backing")},
	}
}

// skipNoPunch skips the test if the backing file's file system cannot
// punch holes (then reporting cannot give file memory back).
func skipNoPunch(t *testing.T, err error) {
	if errors.Is(err, syscall.EOPNOTSUPP) {
		t.Skip("the file system cannot punch holes:", err)
	}
}

// allocAll allocates order-0 pages until none is left, also those on
// other Ps' lists (a refill may leave pages on a P the goroutine then
// leaves): on ENOMEM it drains the lists and tries again, until a drain
// brings nothing.
func allocAll(s *System, gfp GFP, use func(uintptr)) {
	drained := false
	for {
		a, err := s.AllocPages(0, 0, gfp)
		if err != nil {
			if drained {
				return
			}
			s.DrainPages()
			drained = true
			continue
		}
		drained = false
		use(a)
	}
}

// TestReportFreePagesRSS touches every page of a 64 MiB block through
// order-0 allocations, frees the lower three quarters and reports: the
// block's resident memory drops by exactly the freed 48 MiB (mincore) and
// the process's RSS by about as much; a second report finds nothing; the
// pages come back as zeros and usable; a GFPZero allocation of reported
// memory does not fault it in.
func TestReportFreePagesRSS(t *testing.T) {
	for name, bc := range backings(t) {
		t.Run(name, func(t *testing.T) {
			const bs = 64 << 20
			cfg := bc
			cfg.Nodes, cfg.BlockSize, cfg.InitialPerNode, cfg.MaxBlocks = 1, bs, -1, 4
			cfg.ReportingDelay = -1 // only the synchronous report
			s := newTest(t, cfg)
			ids, err := s.AddMemory(0, bs)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Online(ctx, ids[0], OnlineMovable); err != nil {
				t.Fatal(err)
			}
			start := s.Base() + uintptr(ids[0])*bs
			if n := residentPages(t, s, start, bs); n != 0 {
				t.Fatalf("a fresh block has %d resident pages", n)
			}
			var pages []uintptr
			allocAll(s, GFPMovable, func(a uintptr) {
				b := s.bytes(a, PageSize)
				for i := range b {
					b[i] = 0x5a
				}
				pages = append(pages, a)
			})
			const all = bs / PageSize
			if len(pages) != all {
				t.Fatalf("allocated %d pages of %d", len(pages), all)
			}
			if n := residentPages(t, s, start, bs); n != all {
				t.Fatalf("%d of %d pages resident after touching all", n, all)
			}
			// Free the lower three quarters (by address: whole chunks).
			const freed = bs * 3 / 4
			var kept []uintptr
			for _, a := range pages {
				if a-start < freed {
					if err := s.FreePages(a, 0); err != nil {
						t.Fatal(err)
					}
				} else {
					kept = append(kept, a)
				}
			}
			resBefore, rssBefore := residentPages(t, s, start, bs), rss(t)
			n, err := s.ReportFreePages(ctx)
			skipNoPunch(t, err)
			if err != nil {
				t.Fatal(err)
			}
			resAfter, rssAfter := residentPages(t, s, start, bs), rss(t)
			t.Logf("%s: reported %d MiB; block resident %d -> %d MiB; process RSS %d -> %d MiB (freed %d MiB)",
				name, n>>20, resBefore*PageSize>>20, resAfter*PageSize>>20, rssBefore>>20, rssAfter>>20, freed>>20)
			if n != freed {
				t.Errorf("reported %d bytes, want %d", n, freed)
			}
			if resBefore != all || resAfter != all/4 {
				t.Errorf("block resident pages %d -> %d, want %d -> %d", resBefore, resAfter, all, all/4)
			}
			if rssBefore-rssAfter < freed*3/4 {
				t.Errorf("RSS dropped by %d bytes, want about %d", rssBefore-rssAfter, freed)
			}
			st := s.Stats()
			mz := st.Zones[int(ZoneMovable)]
			if mz.Reported != freed/PageSize || mz.Free != freed/PageSize || st.ReportedBytes != freed {
				t.Errorf("stats: free %d reported %d pages, reported bytes %d; want %d, %d, %d",
					mz.Free, mz.Reported, st.ReportedBytes, freed/PageSize, freed/PageSize, freed)
			}
			if n, err := s.ReportFreePages(ctx); n != 0 || err != nil {
				t.Errorf("second report: %d bytes, %v; want nothing", n, err)
			}

			// Reuse: every page reads zeros, is usable and resident again.
			var again []uintptr
			allocAll(s, GFPMovable, func(a uintptr) {
				b := s.bytes(a, PageSize)
				for i := range b {
					if b[i] != 0 {
						t.Fatalf("reused page %#x: byte %d is %#x, want 0", a, i, b[i])
					}
					b[i] = 0x77
				}
				again = append(again, a)
			})
			if len(again) != freed/PageSize {
				t.Fatalf("reallocated %d pages, want %d", len(again), freed/PageSize)
			}
			if n := residentPages(t, s, start, bs); n != all {
				t.Errorf("%d of %d pages resident after reuse", n, all)
			}
			for _, a := range append(again, kept...) {
				if err := s.FreePages(a, 0); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := s.ReportFreePages(ctx); n != bs || err != nil {
				t.Errorf("report of the whole block: %d bytes, %v; want %d", n, err, bs)
			}
			// A GFPZero allocation of reported memory is not cleared
			// (that would fault it in): it reads zeros anyway.
			a, err := s.AllocPages(0, MaxOrder, GFPMovable|GFPZero)
			if err != nil {
				t.Fatal(err)
			}
			if n := residentPages(t, s, a, PageSize<<MaxOrder); n != 0 {
				t.Errorf("GFPZero allocation of reported memory: %d pages resident, want 0", n)
			}
			for i, c := range s.bytes(a, PageSize<<MaxOrder) {
				if c != 0 {
					t.Fatalf("GFPZero allocation: byte %d is %#x", i, c)
				}
			}
			s.FreePages(a, MaxOrder)
			checkFree(t, s)
		})
	}
}

// TestReportBackground: frees that leave unreported chunks of the
// reporting order wake the background reporter, which (after a short
// delay) gives them back; a request made while the reporter is off is
// served once it is on again.
func TestReportBackground(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 4 << 20, InitialPerNode: 8 << 20,
		ReportingDelay: time.Millisecond})
	passes := make(chan int64, 100)
	hook := func(n int64) {
		select {
		case passes <- n:
		default:
		}
	}
	s.reportHook.Store(&hook)
	// wait waits until the free memory is all reported, pass by pass.
	wait := func(what string) {
		t.Helper()
		guard := time.After(hangGuard)
		for {
			st := s.Stats().Zones[int(ZoneNormal)]
			if st.Reported == st.Free {
				return
			}
			select {
			case <-passes:
			case <-guard:
				t.Fatalf("%s: hang: %d of %d free pages reported", what, st.Reported, st.Free)
			}
		}
	}
	touchFree := func() []uintptr {
		var as []uintptr
		for range 3 {
			a, err := s.AllocPages(0, 9, 0)
			if err != nil {
				t.Fatal(err)
			}
			clear(s.bytes(a, PageSize<<9))
			as = append(as, a)
		}
		for _, a := range as {
			s.FreePages(a, 9)
		}
		return as
	}
	as := touchFree()
	wait("background")
	for _, a := range as {
		if n := residentPages(t, s, a, PageSize<<9); n != 0 {
			t.Errorf("chunk %#x: %d pages resident after the background pass", a, n)
		}
	}
	if d := s.ReportingDelay(); d != time.Millisecond {
		t.Errorf("ReportingDelay() = %v", d)
	}
	s.SetReportingDelay(-5 * time.Second)
	if d := s.ReportingDelay(); d >= 0 {
		t.Errorf("ReportingDelay() = %v after turning it off", d)
	}
	touchFree()
	s.SetReportingDelay(0)
	wait("after turning it on")
}

// TestReportBadInput: bad orders are refused with EINVAL and change
// nothing; a done context stops a report with EINTR; after Close a report
// fails with EINVAL.
func TestReportBadInput(t *testing.T) {
	for _, o := range []int{-1, 9} { // 1 MiB blocks: orders 0..8
		if s, err := New(Config{BlockSize: 1 << 20, ReportingOrder: o}); !errors.Is(err, syscall.EINVAL) {
			if err == nil {
				s.Close()
			}
			t.Errorf("New with reporting order %d: %v, want EINVAL", o, err)
		}
	}
	s, err := New(Config{BlockSize: 1 << 20, ReportingDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.ReportingOrder(); o != 8 {
		t.Errorf("default reporting order with 1 MiB blocks: %d, want 8", o)
	}
	for _, o := range []int{-1, 9, 100} {
		if err := s.SetReportingOrder(o); !errors.Is(err, syscall.EINVAL) || s.ReportingOrder() != 8 {
			t.Errorf("SetReportingOrder(%d): %v, order now %d", o, err, s.ReportingOrder())
		}
	}
	if err := s.SetReportingOrder(0); err != nil || s.ReportingOrder() != 0 {
		t.Errorf("SetReportingOrder(0): %v, order now %d", err, s.ReportingOrder())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := s.ReportFreePages(ctx); n != 0 || !errors.Is(err, syscall.EINTR) {
		t.Errorf("report with a done context: %d, %v; want 0, EINTR", n, err)
	}
	s.Close()
	if _, err := s.ReportFreePages(context.Background()); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("report after Close: %v, want EINVAL", err)
	}
	if s, err := New(Config{BlockSize: 4 << 20}); err != nil || s.ReportingOrder() != DefaultReportingOrder ||
		s.ReportingDelay() != DefaultReportingDelay {
		t.Errorf("defaults: %v", err)
	} else {
		s.Close()
	}
}

// dirtyAll allocates every free chunk of the given order, writes it and
// frees it again, so that all of it is free and not reported; it returns
// the number of chunks.
func dirtyAll(t *testing.T, s *System, order int) int {
	var as []uintptr
	for {
		a, err := s.AllocPages(NumaNoNode, order, 0)
		if err != nil {
			break
		}
		s.bytes(a, PageSize<<order)[0] = 1
		as = append(as, a)
	}
	for _, a := range as {
		if err := s.FreePages(a, order); err != nil {
			t.Fatal(err)
		}
	}
	return len(as)
}

// TestReportCancelBetweenBatches: a report stops between batches when its
// context is done, keeping what it reported; the next report does the
// rest.
func TestReportCancelBetweenBatches(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 1 << 20, InitialPerNode: 40 << 20, MaxBlocks: 64,
		ReportingDelay: -1})
	if n := dirtyAll(t, s, 8); n != 40 {
		t.Fatalf("%d chunks", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mid := func() { cancel() }
	s.reportMidHook.Store(&mid)
	n, err := s.ReportFreePages(ctx)
	if n != reportBatch<<20 || !errors.Is(err, syscall.EINTR) {
		t.Errorf("cancelled report: %d bytes, %v; want %d, EINTR", n, err, reportBatch<<20)
	}
	s.reportMidHook.Store(nil)
	n, err = s.ReportFreePages(context.Background())
	if n != (40-reportBatch)<<20 || err != nil {
		t.Errorf("second report: %d bytes, %v; want %d", n, err, (40-reportBatch)<<20)
	}
	checkFree(t, s)
}

// TestReportDuringOfflineAndAlloc drives the interleavings of a batch
// that is out (zone lock dropped, memory being given back) with an
// Offline of its block and with an allocation that finds nothing else
// free: the offline isolates the block and waits for the chunk, which
// comes back free and isolated, and the offline completes; the
// allocation waits for the batch instead of failing with ENOMEM.
func TestReportDuringOfflineAndAlloc(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 2 << 20, InitialPerNode: 4 << 20, ReportingDelay: -1})
	ctx := context.Background()
	// Block 1 all free and unreported; block 0 all allocated.
	a0, err := s.AllocPages(0, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := s.AllocPages(0, 9, 0)
	s.bytes(a1, PageSize)[0] = 1
	if s.BlockOf(a0) == s.BlockOf(a1) {
		t.Fatal("both chunks in one block")
	}
	s.FreePages(a1, 9)
	blk := s.BlockOf(a1)

	going := make(chan struct{})
	unreg := s.RegisterMemoryNotifier("t", 0, func(ev MemoryEvent, a MemoryNotify) error {
		if ev == MemGoingOffline {
			close(going)
		}
		return nil
	})
	defer unreg()
	offDone := make(chan error, 1)
	mid := func() {
		// The chunk is out. Offline gets as far as waiting for it.
		go func() { offDone <- s.Offline(ctx, blk) }()
		select {
		case <-going:
		case <-time.After(hangGuard):
			t.Error("hang: offline never reached MEM_GOING_OFFLINE")
		}
	}
	s.reportMidHook.Store(&mid)
	n, err := s.ReportFreePages(ctx)
	s.reportMidHook.Store(nil)
	if n != 2<<20 || err != nil {
		t.Errorf("report: %d bytes, %v", n, err)
	}
	select {
	case err := <-offDone:
		if err != nil {
			t.Errorf("offline with a reported chunk out: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("hang: offline did not finish")
	}
	if bi, _ := s.Block(blk); bi.State != BlockOffline {
		t.Errorf("block %d %v", blk, bi.State)
	}

	// Allocation: block 0 full but for the chunk out.
	if err := s.Online(ctx, blk, OnlineKernel); err != nil {
		t.Fatal(err)
	}
	a1, _ = s.AllocPages(0, 9, 0) // block 1 again, touched
	s.bytes(a1, PageSize)[0] = 1
	s.FreePages(a1, 9)
	waits := s.reportWaits.Load()
	allocDone := make(chan error, 1)
	mid = func() {
		go func() {
			a, err := s.AllocPages(0, 9, 0)
			if err == nil {
				err = s.FreePages(a, 9)
			}
			allocDone <- err
		}()
		// Until the allocation has failed once and waits for us.
		deadline := time.Now().Add(hangGuard)
		for s.reportWaits.Load() == waits && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}
	s.reportMidHook.Store(&mid)
	_, err = s.ReportFreePages(ctx)
	s.reportMidHook.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.reportWaits.Load() == waits {
		t.Error("the allocation never waited for the batch")
	}
	if err := <-allocDone; err != nil {
		t.Errorf("allocation while the only free chunk was out: %v", err)
	}
	s.FreePages(a0, 9)
	checkFree(t, s)
}

// checkReported checks, with the zone locks held, that every reported
// free chunk of an online block is not resident and that each zone's
// reported count matches its reported chunks. (Not the residency if
// transparent huge pages are "always": khugepaged may collapse free
// memory back in.)
func checkReported(t testing.TB, s *System) {
	t.Helper()
	thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	resident := !strings.Contains(string(thp), "[always]")
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	for zi := range s.zones {
		z := &s.zones[zi]
		z.lock.Lock()
		var rep int64
		for o := range z.freeRep {
			for pfn := z.freeRep[o]; pfn != nilPFN; {
				b, p := s.pfnPage(pfn)
				st := p.loadState()
				if stKind(st) != pgBuddy || stOrder(st) != o || st&pgReported == 0 {
					t.Errorf("zone %d: state %#x on the reported list of order %d", zi, st, o)
				}
				if n := residentPages(t, s, b.pageAddr(int(p.idx)), PageSize<<o); resident && n != 0 {
					t.Errorf("reported chunk %#x order %d: %d pages resident", b.pageAddr(int(p.idx)), o, n)
				}
				rep += 1 << o
				pfn = p.next
			}
			for pfn := z.free[o]; pfn != nilPFN; {
				_, p := s.pfnPage(pfn)
				if st := p.loadState(); st != mkState(pgBuddy, o, 0) {
					t.Errorf("zone %d: state %#x on the free list of order %d", zi, st, o)
				}
				pfn = p.next
			}
		}
		if got := z.nrReported.Load(); got != rep {
			t.Errorf("zone %d: nrReported %d, reported chunks hold %d pages", zi, got, rep)
		}
		z.lock.Unlock()
	}
}

// TestStressReporting is TestStressHotplug with the page reporter busy:
// the background reporter at no delay and a low order, and a goroutine
// reporting synchronously (sometimes cancelled) — while allocations (some
// GFPZero, checked to read zeros) and frees run and blocks are added,
// onlined, offlined and removed. Owner tags must survive (a chunk given
// back while allocated would lose them), and at the end every reported
// chunk is not resident.
func TestStressReporting(t *testing.T) {
	s := newTest(t, Config{Nodes: 2, BlockSize: 1 << 20, InitialPerNode: 2 << 20, MaxBlocks: 32,
		ReportingOrder: 2, ReportingDelay: time.Nanosecond})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reports, bytes int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithCancel(context.Background())
			switch i % 3 {
			case 0:
				cancel() // before it starts
			case 1:
				go cancel() // somewhere in the pass, or before, or after
			}
			n, err := s.ReportFreePages(ctx)
			cancel()
			if err != nil && !errors.Is(err, syscall.EINTR) {
				t.Errorf("report: %v", err)
			}
			reports++
			bytes += n
		}
	}()
	stressHotplug(t, s, true)
	close(stop)
	wg.Wait()
	t.Logf("%d synchronous reports gave back %d MiB; %d MiB in all", reports, bytes>>20, s.Stats().ReportedBytes>>20)
	s.SetReportingDelay(-1)
	if _, err := s.ReportFreePages(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkReported(t, s)
	checkFree(t, s)
}
