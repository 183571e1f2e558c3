//go:build linux

// Tests of AllocPages and FreePages: placement, alignment, bad input,
// exhaustion and node fallback; and the helpers newTest and checkFree.

package mem

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

func newTest(t testing.TB, cfg Config) *System {
	t.Helper()
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 1 << 20
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkFree drains the per-P lists and checks free == managed in every zone.
func checkFree(t testing.TB, s *System) {
	t.Helper()
	s.DrainPages()
	// No reporting batch out while the counters are read.
	s.reportMu.Lock()
	st := s.Stats()
	s.reportMu.Unlock()
	for _, z := range st.Zones {
		if z.Free != z.Managed {
			t.Errorf("node %d zone %v: free %d != managed %d", z.Node, z.Zone, z.Free, z.Managed)
		}
	}
}

func TestAllocFreeBasic(t *testing.T) {
	s := newTest(t, Config{BlockSize: 4 << 20, InitialPerNode: 12 << 20})
	var addrs []uintptr
	for o := 0; o <= MaxOrder; o++ {
		for n := 0; n < 2; n++ {
			a, err := s.AllocPages(n, o, GFPZero)
			if err != nil {
				t.Fatalf("alloc node %d order %d: %v", n, o, err)
			}
			if a&(PageSize<<o-1) != 0 {
				t.Fatalf("order %d allocation %#x not aligned", o, a)
			}
			if got := s.PageNode(a); got != n {
				t.Fatalf("alloc on node %d landed on node %d", n, got)
			}
			b := s.bytes(a, PageSize<<o)
			for i := range b {
				if b[i] != 0 {
					t.Fatalf("GFPZero page not zero")
				}
				b[i] = 0xaa
			}
			addrs = append(addrs, a, uintptr(o))
		}
	}
	for i := 0; i < len(addrs); i += 2 {
		if err := s.FreePages(addrs[i], int(addrs[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	checkFree(t, s)
}

func TestFreeBadInput(t *testing.T) {
	s := newTest(t, Config{})
	a, err := s.AllocPages(0, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var x int
	bad := []struct {
		name  string
		addr  uintptr
		order int
	}{
		{"foreign pointer", uintptrOf(&x), 0},
		{"zero", 0, 0},
		{"wrong order", a, 1},
		{"tail page", a + PageSize, 0},
		{"unaligned", a + 8, 2},
		{"negative order", a, -1},
		{"huge order", a, MaxOrder + 1},
		{"offline block", s.Base() + uintptr(s.MaxBlocks()-1)*uintptr(s.BlockSize()), 0},
	}
	before := s.Stats()
	for _, c := range bad {
		if err := s.FreePages(c.addr, c.order); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: got %v, want EINVAL", c.name, err)
		}
	}
	if !s.PageOf(a).Allocated() || s.PageOf(a).Order() != 2 {
		t.Fatal("allocation damaged by bad frees")
	}
	if after := s.Stats(); after.Frees != before.Frees {
		t.Fatalf("bad frees counted: %d -> %d", before.Frees, after.Frees)
	}
	if err := s.FreePages(a, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.FreePages(a, 2); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("double free: %v", err)
	}
	b, _ := s.AllocPages(1, 0, 0)
	if err := s.FreePages(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.FreePages(b, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("double free order 0: %v", err)
	}
	if _, err := s.AllocPages(5, 0, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad node: %v", err)
	}
	if _, err := s.AllocPages(0, MaxOrder+1, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad order: %v", err)
	}
	if _, err := s.AllocPages(0, 0, 1<<20); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad gfp: %v", err)
	}
	checkFree(t, s)
}

func TestExhaustAndFallback(t *testing.T) {
	s := newTest(t, Config{})
	var got []uintptr
	perNode := map[int]int{}
	drained := false
	for {
		a, err := s.AllocPages(0, 0, 0)
		if err != nil {
			if !errors.Is(err, syscall.ENOMEM) {
				t.Fatal(err)
			}
			if drained {
				break
			}
			// A refill may have left pages on a P this goroutine
			// has since left (seen under -race on a loaded machine).
			s.DrainPages()
			drained = true
			continue
		}
		drained = false
		perNode[s.PageNode(a)]++
		got = append(got, a)
	}
	pages := 4 * (1 << 20) / PageSize
	if len(got) != pages || perNode[0] != pages/2 {
		t.Fatalf("got %d pages (%v), want %d with %d local", len(got), perNode, pages, pages/2)
	}
	if _, err := s.AllocPages(1, 0, GFPThisNode); !errors.Is(err, syscall.ENOMEM) {
		t.Fatal(err)
	}
	for _, a := range got {
		if err := s.FreePages(a, 0); err != nil {
			t.Fatal(err)
		}
	}
	checkFree(t, s)
	_ = context.Background()
}
