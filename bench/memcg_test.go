package bench

// Memory cgroup accounting (issue 11): the accounted pair beside the
// unaccounted one, a tenant at its memory.max with a shrinker, and (in
// BenchmarkGC10M) 10M accounted live objects.

import (
	"context"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
)

func init() {
	registerGC("hotslab-accounted", populateHotslabAccounted)
}

// benchGroup returns the benchmark allocator's group name (created once).
func benchGroup(b *testing.B, name string) *memcg.Group {
	root := hotslab(b).Memcg().Root()
	for _, g := range root.Children() {
		if g.Name() == name {
			return g
		}
	}
	g, err := root.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// accountedCache returns the benchmark allocator's accounted 64-byte cache.
func accountedCache(b *testing.B) *slab.Cache {
	a := hotslab(b)
	c, ok := a.Lookup("bench-acct-64")
	if !ok {
		var err error
		c, err = a.NewCache("bench-acct-64", objSize, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
		if err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkAccounted64 is the 64-byte alloc+free pair without and with
// accounting, same loop form: unaccounted (Cache.Alloc/Free), accounted
// through a group handle (Cache.In(g)), accounted through a context
// (Cache.AllocContext).
func BenchmarkAccounted64(b *testing.B) {
	b.Run("unaccounted", func(b *testing.B) {
		c := hotslabCache(b)
		p, _ := c.Alloc()
		c.Free(p)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p, err := c.Alloc()
			if err != nil {
				b.Fatal(err)
			}
			*(*byte)(p) = byte(i)
			c.Free(p)
		}
	})
	b.Run("accounted", func(b *testing.B) {
		c := accountedCache(b)
		h := c.In(benchGroup(b, "bench"))
		p, _ := h.Alloc()
		c.Free(p)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p, err := h.Alloc()
			if err != nil {
				b.Fatal(err)
			}
			*(*byte)(p) = byte(i)
			c.Free(p)
		}
	})
	b.Run("accounted-ctx", func(b *testing.B) {
		c := accountedCache(b)
		ctx := memcg.NewContext(context.Background(), benchGroup(b, "bench"))
		p, _ := c.AllocContext(ctx)
		c.Free(p)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p, err := c.AllocContext(ctx)
			if err != nil {
				b.Fatal(err)
			}
			*(*byte)(p) = byte(i)
			c.Free(p)
		}
	})
}

// tenantCache is a user's cache of objects of one group, oldest first:
// what its shrinker frees under pressure.
type tenantCache struct {
	c    *slab.Cache
	objs []unsafe.Pointer
	head int
}

func (t *tenantCache) add(p unsafe.Pointer) { t.objs = append(t.objs, p) }
func (t *tenantCache) len() int             { return len(t.objs) - t.head }

// dropOldest frees the n oldest objects.
func (t *tenantCache) dropOldest(n int) int {
	n = min(n, t.len())
	for _, p := range t.objs[t.head : t.head+n] {
		t.c.Free(p)
	}
	t.head += n
	if t.head > len(t.objs)/2 {
		t.objs = append(t.objs[:0], t.objs[t.head:]...)
		t.head = 0
	}
	return n
}

// limitObjects is the tenant's working set: memory.max holds this many
// 64-byte accounted objects (68 bytes charged each).
const limitObjects = 60000

// BenchmarkLimitReclaim is a tenant that keeps allocating into its cache:
// unlimited, it drops its oldest quarter itself whenever the cache holds
// limitObjects; limited (memory.max of limitObjects objects), only its
// registered memcg-aware shrinker drops them, when a charge hits the
// max. ns/op is per allocation (its share of the frees included); the
// goal is limited ≤ 2× unlimited (≥ 50 % of the rate).
func BenchmarkLimitReclaim(b *testing.B) {
	run := func(b *testing.B, limited bool) {
		a := hotslab(b)
		name := "reclaim-unlimited"
		if limited {
			name = "reclaim-limited"
		}
		g := benchGroup(b, name)
		t := &tenantCache{c: accountedCache(b)}
		if limited {
			if err := g.SetMax(limitObjects * (objSize + 4)); err != nil {
				b.Fatal(err)
			}
			s := &memcg.Shrinker{
				Name:       "bench-tenant",
				MemcgAware: true,
				Count: func(sc *memcg.ShrinkControl) uint64 {
					if sc.Group != g {
						return 0
					}
					return uint64(t.len())
				},
				Scan: func(sc *memcg.ShrinkControl) uint64 { return uint64(t.dropOldest(int(sc.NrToScan))) },
			}
			if err := a.Memcg().RegisterShrinker(s); err != nil {
				b.Fatal(err)
			}
			defer a.Memcg().UnregisterShrinker(s)
		}
		h := t.c.In(g)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if !limited && t.len() >= limitObjects {
				t.dropOldest(limitObjects / 4)
			}
			p, err := h.Alloc()
			if err != nil {
				b.Fatal(err)
			}
			*(*byte)(p) = byte(i)
			t.add(p)
		}
		b.StopTimer()
		t.dropOldest(t.len())
		b.ReportMetric(float64(g.EventCount(memcg.EventMax)), "max-events")
	}
	b.Run("unlimited", func(b *testing.B) { run(b, false) })
	b.Run("limited", func(b *testing.B) { run(b, true) })
}

// populateHotslabAccounted is populateHotslab with every object charged
// to a group.
func populateHotslabAccounted(n int) func() {
	a := hotslab(nil)
	c, err := a.NewCache("gc-acct-64", objSize, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	if err != nil {
		panic(err)
	}
	g, err := a.Memcg().Root().Create("gc")
	if err != nil {
		panic(err)
	}
	return populateCache(c, c.In(g).Alloc, n, g.Remove)
}
