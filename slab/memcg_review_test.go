package slab_test

// Regression tests from an adversarial review of the memcg accounting.

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
)

// A group of another allocator's controller is refused on every path,
// the reuse fast path included (ids are unique per controller only).
func TestMemcgForeignGroupRefused(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e1 := newBB(t, mem.Config{})
	e2 := newBB(t, mem.Config{})
	g1 := mustGroup(t, e1.a.Memcg().Root(), "x")
	g2 := mustGroup(t, e2.a.Memcg().Root(), "y")
	if g1.TargetID() != g2.TargetID() {
		t.Fatalf("the test needs equal ids: %d %d", g1.TargetID(), g2.TargetID())
	}
	c := mustCache(t, e1.a, "acct", 64, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	p, err := c.In(g1).Alloc()
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p) // on top of the P's sheaf, charged to g1 (id == g2's)
	if q, err := c.In(g2).Alloc(); !errors.Is(err, slab.ErrInvalid) || q != nil {
		t.Fatalf("a foreign group's handle: %p, %v", q, err)
	}
	if q, err := c.In(g2).AllocNode(mem.NumaNoNode, 0); !errors.Is(err, slab.ErrInvalid) || q != nil {
		t.Fatalf("a foreign group's AllocNode: %p, %v", q, err)
	}
}

// A prefilled sheaf of an accounted cache takes its frees back while it
// has room, uncharged.
func TestMemcgPrefilledSheafFree(t *testing.T) {
	e := newBB(t, mem.Config{})
	g := mustGroup(t, e.a.Memcg().Root(), "g")
	for _, flags := range []slab.Flags{slab.NoMerge, slab.Account | slab.NoMerge} {
		c := mustCache(t, e.a, "sheaf-"+strconv.Itoa(int(flags)), 64, &slab.CacheOptions{Flags: flags})
		sh, err := c.PrefillSheaf(4)
		if err != nil {
			t.Fatal(err)
		}
		n0 := sh.Len()
		p := sh.Alloc()
		sh.Free(p)
		if sh.Len() != n0 {
			t.Errorf("%v: Len %d after Alloc+Free, want %d", flags, sh.Len(), n0)
		}
		if flags&slab.Account != 0 {
			q, err := c.In(g).Alloc()
			if err != nil {
				t.Fatal(err)
			}
			sh.Free(q) // a charged object: uncharged as the sheaf keeps it
			if sh.Len() != n0+1 {
				t.Errorf("Len %d after freeing a charged object, want %d", sh.Len(), n0+1)
			}
			e.a.Memcg().Drain()
			if g.Current() != 0 {
				t.Errorf("the sheaf kept a charged object: current %d", g.Current())
			}
		}
		sh.Return()
		if bad := e.refused(); len(bad) != 0 {
			t.Fatal(bad)
		}
	}
}

// One allocation at memory.max makes a shrinker free about what it
// needs, not everything (its frees are charged still in the sheaves and
// stocks until reclaim empties them between rounds).
func TestMemcgShrinkerNotEverything(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	c := mustCache(t, e.a, "acct-shr", 1000, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	g := mustGroup(t, ctrl.Root(), "t")
	var mu sync.Mutex
	var cached []unsafe.Pointer
	s := &memcg.Shrinker{Name: "cached", MemcgAware: true,
		Count: func(sc *memcg.ShrinkControl) uint64 {
			mu.Lock()
			defer mu.Unlock()
			if sc.Group != g {
				return 0
			}
			return uint64(len(cached))
		},
		Scan: func(sc *memcg.ShrinkControl) uint64 {
			mu.Lock()
			defer mu.Unlock()
			n := min(int(sc.NrToScan), len(cached))
			for _, p := range cached[:n] {
				c.Free(p)
			}
			cached = cached[n:]
			return uint64(n)
		}}
	if err := ctrl.RegisterShrinker(s); err != nil {
		t.Fatal(err)
	}
	defer ctrl.UnregisterShrinker(s)
	for range 400 {
		p, err := c.In(g).Alloc()
		if err != nil {
			t.Fatal(err)
		}
		cached = append(cached, p)
	}
	ctrl.Drain()
	if err := g.SetMax(g.Current()); err != nil { // full
		t.Fatal(err)
	}
	p, err := c.In(g).Alloc()
	if err != nil {
		t.Fatal(err)
	}
	if _, freed := ctrl.ShrinkerStats(s); freed == 0 || freed > 100 {
		t.Errorf("one allocation at the max: the shrinker freed %d of 400 (want a quarter at most)", freed)
	}
	c.Free(p)
	mu.Lock()
	for _, q := range cached {
		c.Free(q)
	}
	cached = nil
	mu.Unlock()
	zeroed(t, ctrl, g)
}

// AllocContext of a cache without Account allocates uncharged.
func TestMemcgAllocContextUnaccounted(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "plain", 64, nil)
	g := mustGroup(t, e.a.Memcg().Root(), "t")
	p, err := c.AllocContext(memcg.NewContext(context.Background(), g))
	if err != nil {
		t.Fatal(err)
	}
	e.a.Memcg().Drain()
	if g.Current() != 0 {
		t.Errorf("charged %d", g.Current())
	}
	c.Free(p)
}
