package memcg_test

// Forced interleavings of the problems the 2014 memcg/slab patches fought
// (issue 11): group removal against charges and frees, cache destruction
// against group removal, group creation against cache creation,
// destruction and memory hotplug. Each stops one goroutine at a hook (not
// a sleep) while the others run, so the interleaving is the same on every
// run; lockdep (on in every test) reports any lock order they would
// violate.

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
)

type env struct {
	sys  *mem.System
	a    *slab.Allocator
	ctrl *memcg.Controller
	mu   sync.Mutex
	bad  []*slab.InvalidFree
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 8 << 20, MaxBlocks: 64})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sys: sys}
	e.a, err = slab.New(sys, &slab.Options{OnInvalidFree: func(f *slab.InvalidFree) {
		e.mu.Lock()
		e.bad = append(e.bad, f)
		e.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.ctrl = e.a.Memcg()
	t.Cleanup(func() {
		e.a.Close()
		sys.Close()
		if len(e.bad) != 0 {
			t.Errorf("refused frees: %v", e.bad)
		}
	})
	return e
}

// gate stops the goroutine that reaches it once, until released.
type gate struct {
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{reached: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) hook() {
	g.once.Do(func() {
		close(g.reached)
		<-g.release
	})
}

func checkZero(t *testing.T, ctrl *memcg.Controller, groups ...*memcg.Group) {
	t.Helper()
	ctrl.Drain()
	for _, g := range append(groups, ctrl.Root()) {
		for n := 0; n < 2; n++ {
			if u, r := g.Slab(n); u != 0 || r != 0 {
				t.Errorf("%s: node %d slab %d+%d", g.Path(), n, u, r)
			}
		}
		if g.Current() != 0 {
			t.Errorf("%s: current %d", g.Path(), g.Current())
		}
	}
}

// 1. A group is removed while a charge into it is between its counters
// and its record, and while its objects are freed on other goroutines
// and both nodes: the charge ends at the parent, every free uncharges the
// right ancestor, and every counter ends at exactly zero.
func TestRemoveWhileCharging(t *testing.T) {
	e := newEnv(t)
	p, _ := e.ctrl.Root().Create("p")
	g, _ := p.Create("g")
	c, err := e.a.NewCache("acct", 64, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	if err != nil {
		t.Fatal(err)
	}
	base := e.ctrl.ObjCgroups()
	// Objects of g on both nodes.
	var objs []unsafe.Pointer
	for i := 0; i < 400; i++ {
		o, err := c.In(g).AllocNode(i%2, slab.ThisNode)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	e.ctrl.Drain() // the next charge takes the slow path: no stock
	gt := newGate()
	memcg.SetHook(memcg.HookChargeCounted, gt.hook)
	defer memcg.SetHook(memcg.HookChargeCounted, nil)
	var late unsafe.Pointer
	var lateErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		late, lateErr = c.In(g).Alloc()
	}()
	<-gt.reached // g's counters charged, the object not yet recorded
	// Free half of g's objects from other goroutines, remove g, free more.
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < 200; i += 4 {
				c.Free(objs[i])
			}
		}(w)
	}
	wg.Wait()
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if g.ObjCgroup().Group() != p {
		t.Fatal("g's ObjCgroup not moved to p")
	}
	for _, o := range objs[200:300] {
		c.Free(o)
	}
	close(gt.release)
	<-done
	if lateErr != nil {
		t.Fatal(lateErr)
	}
	e.ctrl.Drain()
	// Live: objs[300:] (charged to g, now p) and late (charged to p).
	if want := int64(101 * 68); p.Current() != want || e.ctrl.Root().Current() != want {
		t.Errorf("p %d, root %d; want %d", p.Current(), e.ctrl.Root().Current(), want)
	}
	var wg2 sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg2.Add(1)
		go func(w int) {
			defer wg2.Done()
			for i := 300 + w; i < 400; i += 2 {
				c.Free(objs[i])
			}
		}(w)
	}
	wg2.Wait()
	c.In(p).Free(late)
	checkZero(t, e.ctrl, p)
	if n := e.ctrl.ObjCgroups(); n != base-1 {
		t.Errorf("%d ObjCgroups, want %d (g's freed)", n, base-1)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// 2. A cache and a merged alias of it are destroyed while the group whose
// objects they hold is in the middle of its removal (cgroup_mutex held,
// ObjCgroups moved, not yet drained): destruction needs no memcg lock,
// the cache's EBUSY rule holds while objects live, their frees uncharge
// the parent, and the removal then frees the group's ObjCgroup.
func TestDestroyWhileRemoving(t *testing.T) {
	e := newEnv(t)
	p, _ := e.ctrl.Root().Create("p")
	g, _ := p.Create("g")
	base := e.ctrl.ObjCgroups()
	c, err := e.a.NewCache("acct-a", 200, &slab.CacheOptions{Flags: slab.Account})
	if err != nil {
		t.Fatal(err)
	}
	alias, err := e.a.NewCache("acct-b", 196, &slab.CacheOptions{Flags: slab.Account})
	if err != nil {
		t.Fatal(err)
	}
	if c.UniqueID() != alias.UniqueID() {
		t.Fatalf("not merged: %s %s", c.UniqueID(), alias.UniqueID())
	}
	var objs []unsafe.Pointer
	for i := 0; i < 100; i++ {
		h := c
		if i%2 == 1 {
			h = alias
		}
		o, err := h.In(g).Alloc()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	gt := newGate()
	memcg.SetHook(memcg.HookRemoveOffline, gt.hook)
	defer memcg.SetHook(memcg.HookRemoveOffline, nil)
	removed := make(chan error)
	go func() { removed <- g.Remove() }()
	<-gt.reached
	if err := alias.Destroy(); err != nil {
		t.Fatalf("destroying the alias: %v", err)
	}
	if err := c.Destroy(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("destroying the cache with live objects: %v", err)
	}
	for _, o := range objs {
		c.Free(o)
	}
	e.ctrl.Root().Current() // no lock: readable meanwhile
	if err := c.Destroy(); err != nil {
		t.Fatalf("destroying the emptied cache: %v", err)
	}
	close(gt.release)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	checkZero(t, e.ctrl, p)
	if n := e.ctrl.ObjCgroups(); n != base-1 {
		t.Errorf("%d ObjCgroups, want %d", n, base-1)
	}
}

// 3. A group is created (stopped with cgroup_mutex held) while caches are
// created and destroyed and a memory block is onlined and offlined, and
// limits are set meanwhile: none of them waits for cgroup_mutex. Then the
// same mix runs freely on several goroutines for lockdep to watch.
func TestCreateAgainstCachesAndHotplug(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, _ := e.ctrl.Root().Create("other")
	ids, err := e.sys.AddMemory(1, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	block := ids[0]
	gt := newGate()
	memcg.SetHook(memcg.HookCreateLocked, gt.hook)
	created := make(chan *memcg.Group)
	go func() {
		g, err := e.ctrl.Root().Create("new")
		if err != nil {
			t.Error(err)
		}
		created <- g
	}()
	<-gt.reached
	memcg.SetHook(memcg.HookCreateLocked, nil)
	for i := 0; i < 3; i++ {
		c, err := e.a.NewCache("while-creating", 200, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
		if err != nil {
			t.Fatal(err)
		}
		o, err := c.In(other).Alloc()
		if err != nil {
			t.Fatal(err)
		}
		c.Free(o)
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
		if err := e.sys.Online(ctx, block, mem.OnlineMovable); err != nil {
			t.Fatal(err)
		}
		if err := e.sys.Offline(ctx, block); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.SetMax(1 << 20); err != nil {
		t.Fatal(err)
	}
	close(gt.release)
	g := <-created
	if err := g.SetMax(64 << 10); err != nil {
		t.Fatal(err)
	}

	// Free running: groups created, limited and removed; caches created,
	// used and destroyed; the block onlined and offlined.
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			x, err := g.Create("x")
			if err != nil {
				t.Error(err)
				return
			}
			if err := x.SetMax(int64(i+1) << 12); err != nil {
				t.Error(err)
			}
			if err := x.Remove(); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			c, err := e.a.NewCache("churn", 64, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
			if err != nil {
				t.Error(err)
				return
			}
			if o, err := c.In(g).Alloc(); err == nil {
				c.Free(o)
			} else {
				t.Error(err)
			}
			if err := c.Destroy(); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			if err := e.sys.Online(ctx, block, mem.OnlineMovable); err != nil {
				t.Error(err)
				return
			}
			if err := e.sys.Offline(ctx, block); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	checkZero(t, e.ctrl, g, other)
}
