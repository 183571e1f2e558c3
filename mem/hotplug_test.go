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
			kind := OnlineKind(OnlineKernel)
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
