package slab_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
)

// Black-box tests of memcg accounting through slab (issue 11).

func mustGroup(t *testing.T, g *memcg.Group, name string) *memcg.Group {
	t.Helper()
	ch, err := g.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// zeroed checks that every group's counters are back to zero.
func zeroed(t *testing.T, ctrl *memcg.Controller, groups ...*memcg.Group) {
	t.Helper()
	ctrl.Drain()
	for _, g := range append(groups, ctrl.Root()) {
		if u, r := g.Slab(-1); g.Current() != 0 || u != 0 || r != 0 {
			t.Errorf("%s: current %d, slab %d+%d; want all 0", g.Path(), g.Current(), u, r)
		}
	}
}

func TestAccountCharges(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	parent := mustGroup(t, ctrl.Root(), "tenants")
	g := mustGroup(t, parent, "a")
	c := mustCache(t, e.a, "acct-64", 64, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	const n = 1000
	objs := make([]unsafe.Pointer, n)
	for i := range objs {
		p, err := c.In(g).Alloc()
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = p
	}
	ctrl.Drain()
	per := int64(64 + 4) // the slot and its ObjCgroup id
	for _, x := range []*memcg.Group{g, parent, ctrl.Root()} {
		if x.Current() != n*per {
			t.Errorf("%s: current %d, want %d", x.Path(), x.Current(), n*per)
		}
		u, r := x.Slab(-1)
		if u != n*per || r != 0 {
			t.Errorf("%s: slab %d+%d", x.Path(), u, r)
		}
	}
	stat, _ := g.FileContents("memory.stat")
	if want := "slab_unreclaimable 68000\n"; !strings.Contains(stat, want) {
		t.Errorf("memory.stat lacks %q:\n%s", want, stat)
	}
	// Every free path uncharges: Free, FreeBulk, a Magazine, a prefilled
	// Sheaf, the handle's Free.
	for _, p := range objs[:200] {
		c.Free(p)
	}
	c.FreeBulk(objs[200:400])
	m, err := c.NewMagazine(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range objs[400:600] {
		m.Free(p)
	}
	m.Close()
	sh, err := c.PrefillSheaf(16)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range objs[600:800] {
		sh.Free(p)
	}
	sh.Return()
	for _, p := range objs[800:] {
		c.In(g).Free(p)
	}
	if bad := e.refused(); len(bad) != 0 {
		t.Fatal(bad)
	}
	zeroed(t, ctrl, g, parent)
	// Objects allocated uncharged from an accounted cache charge nothing
	// and uncharge nothing.
	p, _ := c.Alloc()
	q, _ := c.In(g).Alloc()
	c.Free(p)
	ctrl.Drain()
	if g.Current() != per {
		t.Errorf("current %d after an uncharged object's free, want %d", g.Current(), per)
	}
	c.Free(q)
	c.Free(q) // a double free uncharges once (and is reported)
	if len(e.refused()) != 1 {
		t.Error("double free not reported")
	}
	zeroed(t, ctrl, g, parent)
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestAccountRefused(t *testing.T) {
	e := newBB(t, mem.Config{})
	g := mustGroup(t, e.a.Memcg().Root(), "g")
	plain := mustCache(t, e.a, "plain-64", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	if p, err := plain.In(g).Alloc(); !errors.Is(err, syscall.EINVAL) || p != nil {
		t.Fatalf("charging through a cache without Account: %v", err)
	}
	acct := mustCache(t, e.a, "acct-32", 32, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	if _, err := acct.In(nil).Alloc(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("nil group: %v", err)
	}
	other := memcg.New()
	if _, err := acct.In(other.Root()).Alloc(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("another controller's group: %v", err)
	}
	if _, err := e.a.KmallocGroup(nil, 10, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("KmallocGroup nil: %v", err)
	}
	// A pointer into an accounted slab's vector is no object.
	p, err := acct.In(g).Alloc()
	if err != nil {
		t.Fatal(err)
	}
	st := acct.Stats()
	// p is in its slab's first page (a fresh cache): the vector starts
	// ObjsPerSlab slots after the slab's start.
	off := (uintptr(p) & (mem.PageSize<<st.Order - 1)) / 32
	acct.Free(unsafe.Add(p, (uintptr(st.ObjsPerSlab)-off)*32))
	if bad := e.refused(); len(bad) != 1 {
		t.Fatalf("free into the vector: %v", bad)
	}
	acct.Free(p)
	zeroed(t, e.a.Memcg(), g)
}

func TestAccountLimit(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	g := mustGroup(t, ctrl.Root(), "limited")
	c := mustCache(t, e.a, "acct-256", 256, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	if err := g.WriteFile("memory.max", "64K"); err != nil {
		t.Fatal(err)
	}
	var objs []unsafe.Pointer
	var err error
	for {
		var p unsafe.Pointer
		if p, err = c.In(g).Alloc(); err != nil {
			break
		}
		objs = append(objs, p)
		if g.Current() > g.Max() {
			t.Fatalf("current %d above max %d", g.Current(), g.Max())
		}
	}
	if !errors.Is(err, syscall.ENOMEM) || !errors.Is(err, slab.ErrNoMemory) {
		t.Fatalf("at the max: %v", err)
	}
	if want := (64 << 10) / (256 + 4); len(objs) != want {
		t.Errorf("%d objects under 64 KiB, want %d", len(objs), want)
	}
	if ev := g.EventCount(memcg.EventOOM); ev != 1 {
		t.Errorf("oom events %d", ev)
	}
	// The failed allocation's object went back.
	c.FreeBulk(objs)
	zeroed(t, ctrl, g)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy after freeing everything: %v", err)
	}
}

func TestKmallocGroup(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	g := mustGroup(t, ctrl.Root(), "k")
	small, err := e.a.KmallocGroup(g, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	large, err := e.a.KmallocGroup(g, 20000, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := memcg.NewContext(context.Background(), g)
	viaCtx, err := e.a.KmallocContext(ctx, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.a.KmallocContext(context.Background(), 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctrl.Drain()
	want := int64(112+4) + 8*mem.PageSize + int64(56+4) // 20000 bytes: an order-3 allocation
	if g.Current() != want {
		t.Errorf("current %d, want %d", g.Current(), want)
	}
	// Krealloc keeps the group.
	grown, err := e.a.Krealloc(small, 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctrl.Drain()
	if want2 := want - (112 + 4) + (512 + 4); g.Current() != want2 {
		t.Errorf("after krealloc: current %d, want %d", g.Current(), want2)
	}
	for _, p := range []unsafe.Pointer{grown, large, viaCtx, plain} {
		e.a.Kfree(p)
	}
	if bad := e.refused(); len(bad) != 0 {
		t.Fatal(bad)
	}
	zeroed(t, ctrl, g)
}

func TestAllocContext(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	g := mustGroup(t, ctrl.Root(), "ctx")
	c := mustCache(t, e.a, "acct-ctx", 40, &slab.CacheOptions{Flags: slab.Account | slab.ReclaimAccount})
	p, err := c.AllocContext(memcg.NewContext(context.Background(), g))
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.AllocContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctrl.Drain()
	if u, r := g.Slab(-1); g.Current() != 44 || r != 44 || u != 0 {
		t.Errorf("current %d slab %d+%d, want 44 reclaimable", g.Current(), u, r)
	}
	c.Free(p)
	c.Free(q)
	zeroed(t, ctrl, g)
}

// Close frees objects still allocated: their charges go too.
func TestAccountClose(t *testing.T) {
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	a, err := slab.New(sys, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := a.Memcg()
	g := mustGroup(t, ctrl.Root(), "closing")
	c := mustCache(t, a, "acct-close", 128, &slab.CacheOptions{Flags: slab.Account})
	for range 100 {
		if _, err := c.In(g).Alloc(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.KmallocGroup(g, 1<<16, 0); err != nil {
		t.Fatal(err)
	}
	a.Close()
	zeroed(t, ctrl, g)
}

func TestMemcgSlabInfo(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	p := mustGroup(t, ctrl.Root(), "p")
	g := mustGroup(t, p, "g")
	c := mustCache(t, e.a, "info-a", 48, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	d := mustCache(t, e.a, "info-b", 500, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	var objs []unsafe.Pointer
	for i := 0; i < 30; i++ {
		o, _ := c.In(g).Alloc()
		objs = append(objs, o)
	}
	for i := 0; i < 5; i++ {
		o, _ := d.In(p).Alloc()
		objs = append(objs, o)
	}
	big, err := e.a.KmallocGroup(g, 3*mem.PageSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A large kmalloc's pages are kernel memory, not slab.
	ctrl.Drain()
	if u, r := g.Slab(-1); u != 30*52 || r != 0 || g.Kernel(-1) != 30*52+4*mem.PageSize {
		t.Errorf("slab %d+%d, kernel %d", u, r, g.Kernel(-1))
	}
	got := e.a.MemcgSlabInfo(g)
	want := []slab.GroupSlabInfo{{"info-a", 30, 30 * 52}}
	if !slices.Equal(got, want) {
		t.Errorf("g: %v, want %v", got, want)
	}
	got = e.a.MemcgSlabInfo(p)
	want = []slab.GroupSlabInfo{{"info-a", 30, 30 * 52}, {"info-b", 5, 5 * 508}}
	if !slices.Equal(got, want) {
		t.Errorf("p: %v, want %v", got, want)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := e.a.MemcgSlabInfo(p); !slices.Equal(got, want) {
		t.Errorf("p after g's removal: %v, want %v", got, want)
	}
	for _, o := range objs[:30] {
		c.Free(o)
	}
	for _, o := range objs[30:] {
		d.Free(o)
	}
	e.a.Kfree(big)
	if got := e.a.MemcgSlabInfo(p); len(got) != 0 {
		t.Errorf("after freeing: %v", got)
	}
	zeroed(t, ctrl, p)
}

// A freed accounted object stays charged in the P's sheaf until it is
// allocated again or goes back to its slab: memory.current counts it
// until then (Drain gives it back); the next allocation of the same group
// reuses the charge, a plain one drops it, another group's moves it.
func TestAccountChargeKeptForReuse(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	ga := mustGroup(t, ctrl.Root(), "a")
	gb := mustGroup(t, ctrl.Root(), "b")
	c := mustCache(t, e.a, "reuse-64", 64, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	runtime.LockOSThread() // one P for the sequence below, as far as Go allows
	defer runtime.UnlockOSThread()
	const per = 68
	p, err := c.In(ga).Alloc()
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p)
	ctrl.Drain()
	if ga.Current() != 0 {
		t.Fatalf("after Drain: current %d", ga.Current())
	}
	// Reuse, drop and move, observed through Drain's exact counts.
	objs := make([]unsafe.Pointer, 50)
	for i := range objs {
		if objs[i], err = c.In(ga).Alloc(); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range objs {
		c.Free(o)
	}
	for i := range objs[:20] {
		if objs[i], err = c.In(ga).Alloc(); err != nil { // reuse
			t.Fatal(err)
		}
	}
	for i := range objs[20:30] {
		if objs[20+i], err = c.Alloc(); err != nil { // plain: drops the charge
			t.Fatal(err)
		}
	}
	for i := range objs[30:40] {
		if objs[30+i], err = c.In(gb).Alloc(); err != nil { // moves it to b
			t.Fatal(err)
		}
	}
	ctrl.Drain()
	if ga.Current() != 20*per || gb.Current() != 10*per {
		t.Errorf("a %d (want %d), b %d (want %d)", ga.Current(), 20*per, gb.Current(), 10*per)
	}
	if got := e.a.MemcgSlabInfo(ga); len(got) != 1 || got[0].Objects != 20 {
		t.Errorf("slabinfo a: %v", got)
	}
	for _, o := range objs[:40] {
		c.Free(o)
	}
	zeroed(t, ctrl, ga, gb)
}

// At its max a group whose freed objects wait charged in sheaves gets
// them back by reclaim (the flusher) before it fails.
func TestAccountLimitReclaimsSheaves(t *testing.T) {
	e := newBB(t, mem.Config{})
	ctrl := e.a.Memcg()
	g := mustGroup(t, ctrl.Root(), "g")
	c := mustCache(t, e.a, "sheaf-limit", 128, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	d := mustCache(t, e.a, "sheaf-limit-2", 256, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	if err := g.SetMax(32 << 10); err != nil {
		t.Fatal(err)
	}
	var objs []unsafe.Pointer
	for {
		p, err := c.In(g).Alloc()
		if err != nil {
			break
		}
		objs = append(objs, p)
	}
	c.FreeBulk(objs) // charged still, in the sheaves
	// Another cache of the same group: its charges need c's back.
	var more []unsafe.Pointer
	for i := 0; i < 1000; i++ {
		p, err := d.In(g).Alloc()
		if err != nil {
			break
		}
		more = append(more, p)
	}
	if want := (32 << 10) / 260; len(more) != want {
		t.Errorf("%d objects of the second cache, want %d (the first's freed charges reclaimed)", len(more), want)
	}
	d.FreeBulk(more)
	zeroed(t, ctrl, g)
}

// memory.numa_stat lists the nodes with memory, as the kernel's does, and
// follows a node's hot-add and offline; its per-node slab bytes follow
// where the objects are.
func TestNumaStatHotplug(t *testing.T) {
	ctx := context.Background()
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: -1, MaxBlocks: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	online := func(node int) int {
		ids, err := sys.AddMemory(node, 2<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := sys.Online(ctx, ids[0], mem.OnlineKernel); err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	online(0)
	a, err := slab.New(sys, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctrl := a.Memcg()
	g := mustGroup(t, ctrl.Root(), "numa")
	c := mustCache(t, a, "numa-acct", 1000, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	numa := func() string {
		ctrl.Drain()
		s, err := g.FileContents("memory.numa_stat")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p0, err := c.In(g).AllocNode(0, slab.ThisNode)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := numa(), "anon N0=0\nfile N0=0\nkernel N0=1004\nslab_reclaimable N0=0\nslab_unreclaimable N0=1004\n"; got != want {
		t.Fatalf("one node:\n%s\nwant\n%s", got, want)
	}
	block1 := online(1)
	p1, err := c.In(g).AllocNode(1, slab.ThisNode)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := numa(), "anon N0=0 N1=0\nfile N0=0 N1=0\nkernel N0=1004 N1=1004\nslab_reclaimable N0=0 N1=0\nslab_unreclaimable N0=1004 N1=1004\n"; got != want {
		t.Fatalf("node 1 hot-added:\n%s\nwant\n%s", got, want)
	}
	c.Free(p1)
	ctrl.Drain()
	if err := sys.Offline(ctx, block1); err != nil {
		t.Fatal(err)
	}
	if got, want := numa(), "anon N0=0\nfile N0=0\nkernel N0=1004\nslab_reclaimable N0=0\nslab_unreclaimable N0=1004\n"; got != want {
		t.Fatalf("node 1 offline:\n%s\nwant\n%s", got, want)
	}
	c.Free(p0)
	zeroed(t, ctrl, g)
}
