package memcg_test

import (
	"errors"
	"math"
	"sync"
	"syscall"
	"testing"

	"github.com/hotslab/hotslab/memcg"
)

func mustCreate(t *testing.T, g *memcg.Group, name string) *memcg.Group {
	t.Helper()
	ch, err := g.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestTree(t *testing.T) {
	c := memcg.New()
	a := mustCreate(t, c.Root(), "a")
	b := mustCreate(t, a, "b")
	if b.Path() != "/a/b" || c.Root().Path() != "/" {
		t.Fatalf("paths %q %q", b.Path(), c.Root().Path())
	}
	if g, err := c.Lookup("a/b"); err != nil || g != b {
		t.Fatalf("Lookup a/b: %v %v", g, err)
	}
	if _, err := c.Lookup("a/x"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Lookup a/x: %v", err)
	}
	if _, err := a.Create("b"); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("Create existing: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "x/y", "a\x00"} {
		if _, err := a.Create(bad); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Create(%q): %v", bad, err)
		}
	}
	if err := a.Remove(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Remove with children: %v", err)
	}
	if err := c.Root().Remove(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Remove root: %v", err)
	}
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(); !errors.Is(err, memcg.ErrRemoved) {
		t.Fatalf("Remove twice: %v", err)
	}
	if _, err := b.Create("x"); !errors.Is(err, memcg.ErrRemoved) {
		t.Fatalf("Create in removed: %v", err)
	}
	b2 := mustCreate(t, a, "b") // the name is free at once
	if b2 == b || !b2.Online() || b.Online() {
		t.Fatal("reused name")
	}
	if got := a.Children(); len(got) != 1 || got[0] != b2 {
		t.Fatalf("children %v", got)
	}
}

func TestChargeExact(t *testing.T) {
	c := memcg.New()
	a := mustCreate(t, c.Root(), "a")
	b := mustCreate(t, a, "b")
	const n, size = 1000, 68
	ids := make([]uint32, n)
	for i := range ids {
		id, err := c.Charge(b, size, i%2, stat(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		if id != b.ObjCgroup().ID() {
			t.Fatalf("id %d, want %d", id, b.ObjCgroup().ID())
		}
	}
	c.Drain()
	for _, g := range []*memcg.Group{b, a, c.Root()} {
		if g.Current() != n*size {
			t.Errorf("%s: current %d, want %d", g.Path(), g.Current(), n*size)
		}
		u, r := g.Slab(-1)
		if u+r != n*size || r != 334*size {
			t.Errorf("%s: slab %d+%d", g.Path(), u, r)
		}
		u0, r0 := g.Slab(0)
		u1, r1 := g.Slab(1)
		if u0+r0 != 500*size || u1+r1 != 500*size {
			t.Errorf("%s: per node %d %d", g.Path(), u0+r0, u1+r1)
		}
	}
	if b.Peak() < n*size {
		t.Errorf("peak %d", b.Peak())
	}
	for i, id := range ids {
		c.Uncharge(id, size, i%2, stat(i))
	}
	c.Drain()
	for _, g := range []*memcg.Group{b, a, c.Root()} {
		if u, r := g.Slab(-1); g.Current() != 0 || u != 0 || r != 0 {
			t.Errorf("%s after uncharge: current %d slab %d %d", g.Path(), g.Current(), u, r)
		}
	}
	b.ResetPeak()
	if b.Peak() != 0 {
		t.Errorf("peak after reset %d", b.Peak())
	}
}

func TestLimit(t *testing.T) {
	c := memcg.New()
	a := mustCreate(t, c.Root(), "a")
	b := mustCreate(t, a, "b")
	if err := a.SetMax(64 << 10); err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	var err error
	for {
		var id uint32
		if id, err = c.Charge(b, 1000, 0, memcg.StatSlabUnreclaimable); err != nil {
			break
		}
		ids = append(ids, id)
		if a.Current() > a.Max() || b.Current() > a.Max() {
			t.Fatalf("current %d above max %d", a.Current(), a.Max())
		}
	}
	if !errors.Is(err, syscall.ENOMEM) || !errors.Is(err, memcg.ErrNoMemory) {
		t.Fatalf("at the limit: %v", err)
	}
	if len(ids) != 65 { // 65*1000 <= 65536 < 66*1000, stocks drained before failing
		t.Errorf("charged %d objects of 1000 under a 64 KiB max", len(ids))
	}
	if a.EventCount(memcg.EventMax) == 0 || a.EventCount(memcg.EventOOM) != 1 || b.EventCount(memcg.EventOOM) != 0 {
		t.Errorf("events: a max %d oom %d, b oom %d", a.EventCount(memcg.EventMax), a.EventCount(memcg.EventOOM), b.EventCount(memcg.EventOOM))
	}
	if c.Root().EventCount(memcg.EventOOM) != 1 {
		t.Errorf("root oom %d: events are hierarchical", c.Root().EventCount(memcg.EventOOM))
	}
	for _, id := range ids {
		c.Uncharge(id, 1000, 0, memcg.StatSlabUnreclaimable)
	}
	c.Drain()
	if a.Current() != 0 {
		t.Errorf("current %d", a.Current())
	}
	for _, bad := range []int64{-1} {
		if err := a.SetMax(bad); !errors.Is(err, syscall.EINVAL) || a.Max() != 64<<10 {
			t.Errorf("SetMax(%d): %v, max %d", bad, err, a.Max())
		}
	}
	if err := c.Root().SetMax(1 << 20); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("root SetMax: %v", err)
	}
}

// A memcg-aware shrinker that frees a tenant's cached objects lets its
// charges keep succeeding at the max.
func TestShrinker(t *testing.T) {
	c := memcg.New()
	g := mustCreate(t, c.Root(), "tenant")
	other := mustCreate(t, c.Root(), "other")
	if err := g.SetMax(256 << 10); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cached := map[*memcg.Group][]uint32{}
	s := cacheShrinker(c, "test-cache", memcg.StatSlabReclaimable, cached, &mu)
	if err := c.RegisterShrinker(s); err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterShrinker(s); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("register twice: %v", err)
	}
	if _, err := c.Charge(other, 1024, 0, memcg.StatSlabReclaimable); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		id, err := c.Charge(g, 1024, 0, memcg.StatSlabReclaimable)
		if err != nil {
			t.Fatalf("charge %d: %v", i, err)
		}
		mu.Lock()
		cached[g] = append(cached[g], id)
		mu.Unlock()
		if g.Current() > g.Max() {
			t.Fatalf("current %d above max", g.Current())
		}
	}
	calls, freed := c.ShrinkerStats(s)
	if calls == 0 || freed == 0 || g.EventCount(memcg.EventOOM) != 0 || g.EventCount(memcg.EventMax) == 0 {
		t.Fatalf("shrinker calls %d freed %d, oom %d max %d", calls, freed, g.EventCount(memcg.EventOOM), g.EventCount(memcg.EventMax))
	}
	if len(cached[other]) != 0 {
		t.Fatal("other group's objects shrunk")
	}
	c.UnregisterShrinker(s)
	// Without it the tenant fails at the max.
	for {
		if _, err := c.Charge(g, 1024, 0, memcg.StatSlabReclaimable); err != nil {
			if !errors.Is(err, syscall.ENOMEM) {
				t.Fatal(err)
			}
			break
		}
	}
}

func TestReparent(t *testing.T) {
	c := memcg.New()
	a := mustCreate(t, c.Root(), "a")
	b := mustCreate(t, a, "b")
	var ids []uint32
	for i := 0; i < 100; i++ {
		id, err := c.Charge(b, 100, 0, memcg.StatSlabUnreclaimable)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	before := c.ObjCgroups()
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	if c.ObjCgroups() != before {
		t.Fatalf("objcg freed while objects record it")
	}
	if b.ObjCgroup().Group() != a {
		t.Fatal("objcg not reparented")
	}
	// A charge through the removed group lands on the parent.
	id, err := c.Charge(b, 100, 0, memcg.StatSlabUnreclaimable)
	if err != nil || id != a.ObjCgroup().ID() {
		t.Fatalf("charge through removed group: id %d, %v", id, err)
	}
	ids = append(ids, id)
	c.Drain()
	if a.Current() != 101*100 {
		t.Fatalf("parent current %d", a.Current())
	}
	for _, id := range ids {
		c.Uncharge(id, 100, 0, memcg.StatSlabUnreclaimable)
	}
	c.Drain()
	if a.Current() != 0 || c.Root().Current() != 0 {
		t.Fatalf("after frees: a %d root %d", a.Current(), c.Root().Current())
	}
	if c.ObjCgroups() != before-1 {
		t.Fatalf("objcgs %d, want %d (the removed group's freed)", c.ObjCgroups(), before-1)
	}
	// The parent's removal moves the reparented ObjCgroups on.
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if c.ObjCgroups() != 1 {
		t.Fatalf("objcgs %d after removing everything", c.ObjCgroups())
	}
}

func TestHigh(t *testing.T) {
	c := memcg.New()
	g := mustCreate(t, c.Root(), "g")
	if err := g.SetHigh(8 << 10); err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for i := 0; i < 100; i++ {
		id, err := c.Charge(g, 1000, 0, memcg.StatSlabUnreclaimable)
		if err != nil {
			t.Fatalf("above high a charge must not fail: %v", err)
		}
		ids = append(ids, id)
	}
	if g.EventCount(memcg.EventHigh) == 0 || g.EventCount(memcg.EventOOM) != 0 {
		t.Fatalf("high %d oom %d", g.EventCount(memcg.EventHigh), g.EventCount(memcg.EventOOM))
	}
	for _, id := range ids {
		c.Uncharge(id, 1000, 0, memcg.StatSlabUnreclaimable)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"max": math.MaxInt64, "max\n": math.MaxInt64, "4096": 4096, "4097\n": 4096, "1K": 0, "4K": 4096,
		"1M": 1 << 20, " 2G\n": 2 << 30, "1T": 1 << 40, "0": 0, "0x1000": 4096,
	} {
		if got, err := memcg.ParseLimit(in); err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "+5", "abc", "1X", "K", "max2", "1.5G", "99999999999999999999"} {
		if _, err := memcg.ParseLimit(bad); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseLimit(%q): %v", bad, err)
		}
	}
}

func TestFiles(t *testing.T) {
	c := memcg.New()
	g := mustCreate(t, c.Root(), "g")
	if err := g.WriteFile("memory.max", "1M\n"); err != nil {
		t.Fatal(err)
	}
	if s, _ := g.FileContents("memory.max"); s != "1048576\n" {
		t.Errorf("memory.max %q", s)
	}
	if err := g.WriteFile("memory.max", "garbage"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("garbage: %v", err)
	}
	if s, _ := g.FileContents("memory.max"); s != "1048576\n" {
		t.Errorf("memory.max after garbage %q", s)
	}
	if err := g.WriteFile("memory.current", "1"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write memory.current: %v", err)
	}
	if s, _ := g.FileContents("memory.high"); s != "max\n" {
		t.Errorf("memory.high %q", s)
	}
	if _, err := c.Charge(g, 4096, 1, memcg.StatSlabReclaimable); err != nil {
		t.Fatal(err)
	}
	c.Drain()
	want := map[string]string{
		"memory.current":   "4096\n",
		"memory.stat":      "anon 0\nfile 0\nkernel 4096\nslab_reclaimable 4096\nslab_unreclaimable 0\nslab 4096\n",
		"memory.events":    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
		"memory.numa_stat": "anon N0=0 N1=0\nfile N0=0 N1=0\nkernel N0=0 N1=4096\nslab_reclaimable N0=0 N1=4096\nslab_unreclaimable N0=0 N1=0\n",
	}
	for name, w := range want {
		if s, err := g.FileContents(name); err != nil || s != w {
			t.Errorf("%s = %q, %v; want %q", name, s, err, w)
		}
	}
	if _, err := c.Root().FileContents("memory.current"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("root memory.current: %v", err)
	}
}

// stat is every third object reclaimable.
func stat(i int) memcg.Stat {
	if i%3 == 0 {
		return memcg.StatSlabReclaimable
	}
	return memcg.StatSlabUnreclaimable
}
