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

// TestParseWords: every Policy and OnlineKind string parses back to itself
// (with or without a trailing newline) and anything else is EINVAL.
func TestParseWords(t *testing.T) {
	for p := PolicyOffline; p <= PolicyOnlineMovable; p++ {
		for _, w := range []string{p.String(), p.String() + "\n"} {
			if got, err := ParsePolicy(w); err != nil || got != p {
				t.Errorf("ParsePolicy(%q) = %v, %v; want %v", w, got, err, p)
			}
		}
	}
	for k := OnlineDefault; k <= OnlineMovable; k++ {
		for _, w := range []string{k.String(), k.String() + "\n"} {
			if got, err := ParseOnlineKind(w); err != nil || got != k {
				t.Errorf("ParseOnlineKind(%q) = %v, %v; want %v", w, got, err, k)
			}
		}
	}
	for _, w := range []string{"", "\n", "Online", "online ", " online", "online\n\n",
		"online\r\n", "kernel", "movable", "online_", "Policy(0)", "OnlineKind(1)"} {
		if _, err := ParsePolicy(w); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParsePolicy(%q) = %v, want EINVAL", w, err)
		}
		if _, err := ParseOnlineKind(w); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseOnlineKind(%q) = %v, want EINVAL", w, err)
		}
	}
	// "offline" is a policy but not a way to online a block.
	if _, err := ParseOnlineKind("offline"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("ParseOnlineKind(offline) = %v, want EINVAL", err)
	}
	if s := OnlineKind(7).String(); s != "OnlineKind(7)" {
		t.Errorf("OnlineKind(7).String() = %q", s)
	}
	if s := Policy(-1).String(); s != "Policy(-1)" {
		t.Errorf("Policy(-1).String() = %q", s)
	}
}
