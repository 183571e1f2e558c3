package slab_test

import (
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
)

// FuzzOps runs a single-goroutine sequence of operations decoded from the
// input against a reference model of what is allocated and charged: no
// object is handed out twice, every group's charge (after Drain) is the
// sum of its live objects', and at the end everything frees and every
// cache destroys.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 9, 17, 33, 65, 2, 2, 2})
	f.Add([]byte{1, 1, 1, 1, 6, 6, 6, 2, 2, 2, 2, 4, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 2000 {
			ops = ops[:2000]
		}
		e := newBB(t, mem.Config{})
		ctrl := e.a.Memcg()
		caches := []*slab.Cache{
			mustCache(t, e.a, "f-plain", 48, &slab.CacheOptions{Flags: slab.NoMerge}),
			mustCache(t, e.a, "f-acct", 200, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge}),
			mustCache(t, e.a, "f-big", 3000, nil),
		}
		groups := []*memcg.Group{mustGroup(t, ctrl.Root(), "g0"), mustGroup(t, ctrl.Root(), "g1")}
		type obj struct {
			c *slab.Cache
			g *memcg.Group // nil: uncharged
		}
		live := map[unsafe.Pointer]obj{}
		var order []unsafe.Pointer
		add := func(p unsafe.Pointer, o obj) {
			if _, dup := live[p]; dup {
				t.Fatalf("object %p handed out twice", p)
			}
			live[p] = o
			order = append(order, p)
		}
		free := func(i int) {
			if len(order) == 0 {
				return
			}
			i %= len(order)
			p := order[i]
			order[i] = order[len(order)-1]
			order = order[:len(order)-1]
			o := live[p]
			delete(live, p)
			o.c.Free(p)
		}
		for _, b := range ops {
			c := caches[int(b>>3)%len(caches)]
			switch b % 8 {
			case 0, 1:
				if p, err := c.Alloc(); err == nil {
					add(p, obj{c, nil})
				}
			case 2, 3:
				free(int(b >> 2))
			case 4:
				g := groups[int(b>>4)%len(groups)]
				if p, err := caches[1].In(g).Alloc(); err == nil {
					add(p, obj{caches[1], g})
				}
			case 5:
				objs := make([]unsafe.Pointer, 1+int(b>>5))
				if err := c.AllocBulk(objs); err == nil {
					for _, p := range objs {
						add(p, obj{c, nil})
					}
				}
			case 6:
				c.Shrink()
			case 7:
				if err := groups[int(b>>4)%len(groups)].SetMax(int64(b) << 12); err != nil {
					t.Fatal(err)
				}
			}
		}
		ctrl.Drain()
		for _, g := range groups {
			var want int64
			for _, o := range live {
				if o.g == g {
					want += 204 // 200-byte slot + its ObjCgroup id
				}
			}
			if g.Current() != want {
				t.Fatalf("%s: charged %d, model %d", g.Path(), g.Current(), want)
			}
		}
		for len(order) > 0 {
			free(0)
		}
		ctrl.Drain()
		for _, g := range groups {
			if g.Current() != 0 {
				t.Fatalf("%s: %d charged after freeing everything", g.Path(), g.Current())
			}
		}
		for _, c := range caches {
			if err := c.Destroy(); err != nil {
				t.Fatal(err)
			}
		}
		if bad := e.refused(); len(bad) != 0 {
			t.Fatal(bad)
		}
	})
}
