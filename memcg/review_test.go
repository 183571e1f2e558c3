package memcg_test

// Regression tests from an adversarial review of the memcg accounting.

import (
	"sync"
	"testing"
	"time"

	"github.com/hotslab/hotslab/memcg"
)

// cacheShrinker is a memcg-aware shrinker over cached: per group, the
// ids of 1 KiB charges (of stat) it may uncharge.
func cacheShrinker(c *memcg.Controller, name string, stat memcg.Stat, cached map[*memcg.Group][]uint32, mu *sync.Mutex) *memcg.Shrinker {
	return &memcg.Shrinker{
		Name: name, MemcgAware: true,
		Count: func(sc *memcg.ShrinkControl) uint64 {
			mu.Lock()
			defer mu.Unlock()
			return uint64(len(cached[sc.Group]))
		},
		Scan: func(sc *memcg.ShrinkControl) uint64 {
			mu.Lock()
			defer mu.Unlock()
			l := cached[sc.Group]
			n := min(int(sc.NrToScan), len(l))
			for _, id := range l[:n] {
				c.Uncharge(id, 1024, 0, stat)
			}
			cached[sc.Group] = l[n:]
			return uint64(n)
		},
	}
}

// Lowering memory.max just below the usage frees about the excess: the
// shrinkers' uncharges wait in the stocks, which reclaim empties after
// each round before it asks whether enough was freed.
func TestSetMaxReclaimsTheExcess(t *testing.T) {
	c := memcg.New()
	g, _ := c.Root().Create("t")
	var mu sync.Mutex
	cached := map[*memcg.Group][]uint32{}
	s := cacheShrinker(c, "cached", memcg.StatSlabUnreclaimable, cached, &mu)
	if err := c.RegisterShrinker(s); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		id, err := c.Charge(g, 1024, 0, memcg.StatSlabUnreclaimable)
		if err != nil {
			t.Fatal(err)
		}
		cached[g] = append(cached[g], id)
	}
	c.Drain()
	if err := g.SetMax(g.Current() - 1024); err != nil { // one object over
		t.Fatal(err)
	}
	_, freed := c.ShrinkerStats(s)
	if freed == 0 || freed > 50 {
		t.Errorf("the shrinker freed %d of 200 objects for 1 KiB (want a quarter at most)", freed)
	}
	if g.Current() > g.Max() {
		t.Errorf("current %d above max %d", g.Current(), g.Max())
	}
	// One object at a time: exactly the excess.
	s.Batch = 1
	for i := 0; i < 4; i++ {
		before := len(cached[g])
		if err := g.SetMax(g.Current() - 1024); err != nil {
			t.Fatal(err)
		}
		if got := before - len(cached[g]); got < 1 || got > before/4+1 {
			t.Errorf("SetMax 1 KiB below the usage freed %d objects", got)
		}
	}
}

// A charge at memory.max reclaims without cgroup_mutex: it completes
// while a group's creation holds it.
func TestChargeAtLimitWithoutCgroupMutex(t *testing.T) {
	c := memcg.New()
	g, _ := c.Root().Create("g")
	h, _ := g.Create("h")
	if err := g.SetMax(memcg.ChargeBatch + 2048 - 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Charge(h, 1024, 0, memcg.StatSlabUnreclaimable); err != nil {
		t.Fatal(err)
	}
	gt := newGate()
	memcg.SetHook(memcg.HookCreateLocked, gt.hook)
	defer memcg.SetHook(memcg.HookCreateLocked, nil)
	created := make(chan struct{})
	go func() {
		defer close(created)
		if _, err := c.Root().Create("other"); err != nil {
			t.Error(err)
		}
	}()
	<-gt.reached // cgroup_mutex held
	done := make(chan error)
	go func() {
		_, err := c.Charge(g, 1024, 0, memcg.StatSlabUnreclaimable) // at the max: reclaims
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(time.Minute): // a deadlock detector, not a timing assertion
		t.Fatal("a charge at the limit waited for cgroup_mutex")
	}
	close(gt.release)
	<-created
}
