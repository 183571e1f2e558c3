package memcg_test

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/hotslab/hotslab/memcg"
)

// A group tree with a limit: charges go to the group and its ancestors,
// and a charge beyond memory.max fails with ENOMEM after reclaim.
func ExampleGroup_SetMax() {
	c := memcg.New()
	tenants, _ := c.Root().Create("tenants")
	a, _ := tenants.Create("a")
	_ = a.WriteFile("memory.max", "8K") // as a write to the cgroup file
	var ids []uint32
	for {
		id, err := c.Charge(a, 1000, 0, memcg.StatSlabUnreclaimable) // 1000 bytes on node 0
		if errors.Is(err, syscall.ENOMEM) {
			break
		}
		ids = append(ids, id)
	}
	c.Drain() // the stocks' bytes back: exact counters
	fmt.Println(len(ids), a.Current(), tenants.Current(), a.EventCount(memcg.EventOOM))
	for _, id := range ids {
		c.Uncharge(id, 1000, 0, memcg.StatSlabUnreclaimable)
	}
	c.Drain()
	cur, _ := a.FileContents("memory.current")
	fmt.Print(cur)
	// Output:
	// 8 8000 8000 1
	// 0
}

// A memcg-aware shrinker frees a group's cached objects when the group
// is at its limit, so its charges keep succeeding.
func ExampleController_RegisterShrinker() {
	c := memcg.New()
	g, _ := c.Root().Create("cache-owner")
	_ = g.SetMax(64 << 10)
	var cached []uint32 // this group's cached entries (their charge ids)
	s := &memcg.Shrinker{
		Name:       "entries",
		MemcgAware: true,
		Count:      func(sc *memcg.ShrinkControl) uint64 { return uint64(len(cached)) },
		Scan: func(sc *memcg.ShrinkControl) uint64 {
			n := min(int(sc.NrToScan), len(cached))
			for _, id := range cached[:n] {
				c.Uncharge(id, 1024, 0, memcg.StatSlabReclaimable)
			}
			cached = cached[n:]
			return uint64(n)
		},
	}
	_ = c.RegisterShrinker(s)
	for i := 0; i < 1000; i++ { // 1000 KiB through a 64 KiB limit
		id, err := c.Charge(g, 1024, 0, memcg.StatSlabReclaimable)
		if err != nil {
			fmt.Println(err)
			return
		}
		cached = append(cached, id)
	}
	_, freed := c.ShrinkerStats(s)
	fmt.Println(g.Current() <= g.Max(), freed > 0, g.EventCount(memcg.EventOOM))
	// Output: true true 0
}
