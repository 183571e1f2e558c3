//go:build linux

// Tests of hot-add, online, offline and remove: cycles, bad kinds, and
// an offline waiting for movable pages (freed, or cancelled).

package mem

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

func TestOfflineOnlineCycle(t *testing.T) {
	s := newTest(t, Config{})
	ctx := context.Background()
	ids, err := s.AddMemory(1, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if bi, _ := s.Block(id); bi.State != BlockOffline {
			t.Fatalf("block %d: %v", id, bi.State)
		}
	}
	for cycle := 0; cycle < 3; cycle++ {
		for i, id := range ids {
			kind := OnlineKernel
			if i == 1 {
				kind = OnlineMovable
			}
			if err := s.Online(ctx, id, kind); err != nil {
				t.Fatal(err)
			}
		}
		a, err := s.AllocPages(1, 0, GFPMovable|GFPThisNode)
		if err != nil {
			t.Fatal(err)
		}
		if s.BlockOf(a) != ids[1] {
			t.Fatalf("movable alloc in block %d, want %d", s.BlockOf(a), ids[1])
		}
		u, err := s.AllocPages(1, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Offline(ctx, s.BlockOf(u)); !errors.Is(err, syscall.EBUSY) {
			t.Fatalf("offline with unmovable page: %v", err)
		}
		if bi, _ := s.Block(s.BlockOf(u)); bi.State != BlockOnline || bi.UsedPages != 8 {
			t.Fatalf("after EBUSY: %+v", bi)
		}
		s.FreePages(u, 3)
		s.FreePages(a, 0)
		for _, id := range ids {
			if err := s.Offline(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Offline(ctx, ids[0]); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("offline of offline block: %v", err)
		}
		checkFree(t, s)
	}
	if err := s.RemoveMemory(ids[0]); err != nil {
		t.Fatal(err)
	}
	if s.PageOf(s.Base()+uintptr(ids[0])*uintptr(s.BlockSize())) != nil {
		t.Fatal("PageOf of removed block")
	}
	if err := s.Probe(uint64(ids[0]) * uint64(s.BlockSize())); err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(uint64(ids[0]) * uint64(s.BlockSize())); !errors.Is(err, syscall.EEXIST) {
		t.Fatal(err)
	}
}

// TestOnlineBadKind: a kind outside the OnlineKind constants is refused
// with EINVAL and leaves the block offline.
func TestOnlineBadKind(t *testing.T) {
	s := newTest(t, Config{})
	ids, err := s.AddMemory(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []OnlineKind{-1, OnlineMovable + 1, 1 << 20} {
		if err := s.Online(context.Background(), ids[0], k); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Online(%v) = %v, want EINVAL", k, err)
		}
		if bi, _ := s.Block(ids[0]); bi.State != BlockOffline {
			t.Fatalf("after Online(%v): %v", k, bi.State)
		}
	}
	if err := s.Online(context.Background(), ids[0], OnlineDefault); err != nil {
		t.Fatal(err)
	}
}

// retryMigrator refuses every migration; its second call — the offline
// has then scanned the block once, found nothing it could move, and waited
// — runs then.
type retryMigrator struct {
	calls int
	then  func(old uintptr)
}

func (m *retryMigrator) MigratePage(old, new uintptr, order int) error {
	m.calls++
	if m.calls == 2 {
		m.then(old)
	}
	return errors.New("busy")
}

// TestOfflineWaitsForMovable: an offline waits for a movable page without
// a Migrator (w) instead of failing. Freed while the offline waits, w
// lets the offline finish; never freed, the offline ends only by its
// context's cancellation, with EINTR, leaving the block online and the
// pages allocated. A second page (m) whose Migrator refuses to move it
// tells the test, on its second call, that the offline has already found
// w and waited: it frees w (and m) or cancels right then, on the offlining
// goroutine. No timer and no second goroutine decide the outcome.
func TestOfflineWaitsForMovable(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, InitialPerNode: 2 << 20})
	for _, cancel := range []bool{false, true} {
		w, err := s.AllocPages(0, 0, GFPMovable)
		if err != nil {
			t.Fatal(err)
		}
		blk := s.BlockOf(w)
		var m uintptr // a second page in w's block
		var others []uintptr
		for m == 0 {
			a, err := s.AllocPages(0, 0, GFPMovable)
			if err != nil {
				t.Fatal(err)
			}
			if s.BlockOf(a) == blk {
				m = a
			} else {
				others = append(others, a)
			}
		}
		for _, a := range others {
			s.FreePages(a, 0)
		}
		ctx, stop := context.WithCancel(context.Background())
		mig := &retryMigrator{then: func(old uintptr) {
			if cancel {
				stop()
				return
			}
			if err := s.FreePages(w, 0); err != nil {
				t.Errorf("free of w during the offline: %v", err)
			}
			if err := s.FreePages(old, 0); err != nil {
				t.Errorf("free of m during the offline: %v", err)
			}
		}}
		s.SetMigrator(m, mig)
		err = s.Offline(ctx, blk)
		stop()
		if mig.calls < 2 {
			t.Fatalf("MigratePage called %d times, want at least 2", mig.calls)
		}
		bi, _ := s.Block(blk)
		if !cancel {
			if err != nil || bi.State != BlockOffline {
				t.Fatalf("offline after the free: %v, block %v", err, bi.State)
			}
			if err := s.Online(context.Background(), blk, OnlineKernel); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !errors.Is(err, syscall.EINTR) || bi.State != BlockOnline || bi.UsedPages != 2 {
			t.Fatalf("cancelled offline: %v, block %+v", err, bi)
		}
		for _, a := range []uintptr{w, m} {
			if pg := s.PageOf(a); !pg.Allocated() || pg.Flags() != GFPMovable {
				t.Fatalf("page %#x after the cancelled offline: allocated %v flags %v", a, pg.Allocated(), pg.Flags())
			}
			if err := s.FreePages(a, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkFree(t, s)
}
