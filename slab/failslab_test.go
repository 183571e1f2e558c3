package slab

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/fault"
	"github.com/hotslab/hotslab/mem"
)

// injected reports whether err is an injected allocation failure.
func injected(err error) bool {
	return errors.Is(err, fault.ErrInjected) && errors.Is(err, syscall.ENOMEM) && errors.Is(err, ErrNoMemory)
}

// Every allocation entry point fails as failslab says, changing nothing:
// no object taken (the cache's counts), nothing charged (the group's);
// the assembly paths step aside while it is active and come back after.
func TestFailslab(t *testing.T) {
	e := newEnv(t, memCfg())
	a := e.a
	c := e.cache("fs-64", 64, &CacheOptions{Flags: NoMerge})
	acct := e.cache("fs-acct", 64, &CacheOptions{Flags: NoMerge | Account})
	g, _ := a.Memcg().Root().Create("fs")
	warm, _ := c.Alloc()
	c.Free(warm)
	fs := a.Failslab()
	if err := fs.SetVerbose(0); err != nil {
		t.Fatal(err)
	}
	before := c.Stats()
	if err := fs.SetTimes(6); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetProbability(100); err != nil {
		t.Fatal(err)
	}
	if c.c.allocProcs != 0 || acct.c.groupProcs != 0 {
		t.Fatal("the assembly paths stay on while failslab is active")
	}
	objs := make([]unsafe.Pointer, 8)
	for name, f := range map[string]func() error{
		"Alloc":        func() error { _, err := c.Alloc(); return err },
		"AllocNode":    func() error { _, err := c.AllocNode(1, ThisNode); return err },
		"AllocBulk":    func() error { return c.AllocBulk(objs) },
		"Kmalloc":      func() error { _, err := a.Kmalloc(100, 0); return err },
		"GroupCache":   func() error { _, err := acct.In(g).Alloc(); return err },
		"KmallocGroup": func() error { _, err := a.KmallocGroup(g, 100, 0); return err },
	} {
		if err := f(); !injected(err) {
			t.Errorf("%s: %v, want an injected ENOMEM", name, err)
		}
	}
	after := c.Stats()
	if after.ActiveObjects() != before.ActiveObjects() || after.Objects() != before.Objects() {
		t.Errorf("failed allocations changed the cache: %d/%d -> %d/%d objects", before.ActiveObjects(), before.Objects(), after.ActiveObjects(), after.Objects())
	}
	a.Memcg().Drain()
	if g.Current() != 0 {
		t.Errorf("failed group allocations charged %d", g.Current())
	}
	if fs.Active() || fs.Failures() != 6 {
		t.Fatalf("after 6 failures: active %v, failures %d", fs.Active(), fs.Failures())
	}
	if c.c.allocProcs == 0 && fastPath {
		t.Error("the assembly alloc path not back after failslab went inactive")
	}
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p)

	// interval: every 3rd; cache-filter: only marked caches.
	fs.SetInterval(3)
	fs.SetTimes(-1)
	fails := 0
	for i := 0; i < 30; i++ {
		if p, err := c.Alloc(); err != nil {
			fails++
		} else {
			c.Free(p)
		}
	}
	if fails != 10 {
		t.Errorf("interval 3: %d of 30 failed", fails)
	}
	fs.SetInterval(1)
	a.SetFailslabCacheFilter(true)
	acct.SetFailslab(true)
	if _, err := c.Alloc(); err != nil {
		t.Errorf("an unmarked cache failed under cache-filter: %v", err)
	}
	if _, err := acct.In(g).Alloc(); !injected(err) {
		t.Errorf("a marked cache did not fail: %v", err)
	}
	// space: the first bytes go through.
	a.SetFailslabCacheFilter(false)
	fs.SetSpace(64 * 5)
	var got []unsafe.Pointer
	for {
		p, err := c.Alloc()
		if err != nil {
			break
		}
		got = append(got, p)
	}
	if len(got) != 4 { // 320 > 64 four times, then 64 is not > 64
		t.Errorf("space 320 let %d allocations of 64 through", len(got))
	}
	fs.SetProbability(0)
	for _, p := range got {
		c.Free(p)
	}
	for _, bad := range []func() error{
		func() error { return fs.SetProbability(101) },
		func() error { return fs.SetInterval(0) },
		func() error { return fs.SetTimes(-2) },
		func() error { return fs.SetSpace(-1) },
		func() error { return fs.SetVerbose(3) },
	} {
		if err := bad(); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("bad knob: %v", err)
		}
	}
}

// fail_page_alloc fails the page allocations a new slab needs; the
// allocation fails with ENOMEM and the cache and the page allocator are
// as they were.
func TestFailPageAllocNewSlab(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("fpa", 2000, &CacheOptions{Flags: NoMerge}) // order > 0 slabs
	fp := e.sys.FailPageAlloc()
	fp.SetVerbose(0)
	fp.SetProbability(100)
	fp.SetTimes(-1)
	if err := e.sys.SetFailMinOrder(0); err != nil {
		t.Fatal(err)
	}
	ms := e.sys.Stats()
	cs := c.Stats()
	if _, err := c.Alloc(); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("alloc with every page allocation failing: %v", err)
	}
	if ms2 := e.sys.Stats(); ms2.Allocs != ms.Allocs || ms2.Frees != ms.Frees || freePages(ms2) != freePages(ms) {
		t.Errorf("page allocator changed: %+v -> %+v", ms, ms2)
	}
	if cs2 := c.Stats(); cs2.Objects() != cs.Objects() || cs2.Slabs() != cs.Slabs() {
		t.Errorf("cache changed: %d slabs -> %d", cs.Slabs(), cs2.Slabs())
	}
	if _, err := e.sys.AllocPages(mem.NumaNoNode, 0, 0); !errors.Is(err, fault.ErrInjected) {
		t.Errorf("AllocPages: %v", err)
	}
	fp.SetProbability(0)
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p)
	if err := e.sys.SetFailMinOrder(-1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("min-order -1: %v", err)
	}
}

func freePages(s mem.Stats) (n int64) {
	for _, z := range s.Zones {
		n += z.Free
	}
	return n
}

// A charge refused at memory.max rolls back: the object goes back, the
// group's and its ancestors' counters are as they were.
func TestChargeFailureRollsBack(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("cf", 512, &CacheOptions{Flags: NoMerge | Account})
	p, _ := e.a.Memcg().Root().Create("p")
	g, _ := p.Create("g")
	if err := g.SetMax(8 << 10); err != nil {
		t.Fatal(err)
	}
	var objs []unsafe.Pointer
	for {
		o, err := c.In(g).Alloc()
		if err != nil {
			break
		}
		objs = append(objs, o)
	}
	e.a.Memcg().Drain()
	active := func() int64 { st := c.Stats(); return st.ActiveObjects() }
	before := [4]int64{active(), g.Current(), p.Current(), e.a.Memcg().Root().Current()}
	for i := 0; i < 5; i++ {
		if _, err := c.In(g).Alloc(); !errors.Is(err, syscall.ENOMEM) {
			t.Fatalf("at the max: %v", err)
		}
	}
	e.a.Memcg().Drain()
	after := [4]int64{active(), g.Current(), p.Current(), e.a.Memcg().Root().Current()}
	if before != after {
		t.Errorf("failed charges changed objects/current: %v -> %v", before, after)
	}
	for _, o := range objs {
		c.Free(o)
	}
}

// A failed AllocBulk leaves the caller's array alone: it held pointers of
// its own (a Magazine's), and preparing them for an accounted or zeroing
// cache wrote into objects of others (found by torture).
func TestAllocBulkFailureTouchesNothing(t *testing.T) {
	e := newHardened(t, Options{InitOnAlloc: true})
	acct := e.cache("abf-acct", 64, &CacheOptions{Flags: NoMerge | Account})
	plain := e.cache("abf-plain", 64, &CacheOptions{Flags: NoMerge, Ctor: func(unsafe.Pointer) {}})
	victim, _ := plain.Alloc()
	dirty(victim, 64)
	dst := make([]unsafe.Pointer, 200)
	for i := range dst {
		dst[i] = unsafe.Add(victim, 0) // stale pointers of another cache
	}
	fp := e.sys.FailPageAlloc()
	fp.SetVerbose(0)
	fp.SetTimes(-1)
	e.sys.SetFailMinOrder(0)
	fp.SetProbability(100)
	if err := acct.AllocBulk(dst); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("AllocBulk with no page to be had: %v", err)
	}
	fp.SetProbability(0)
	for i, x := range unsafe.Slice((*byte)(victim), 64) {
		if x != 0xa5 {
			t.Fatalf("byte %d of another cache's object changed to %#x", i, x)
		}
	}
	plain.Free(victim)
}
