package bench

// hotslab rows of the side-by-side benchmarks.

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

func init() {
	registerPair("hotslab", benchPairHotslab)
	registerPair("hotslab-sheaf", benchPairHotslabSheaf)
	registerPairParallel("hotslab", benchPairParallelHotslab)
	registerBulk("hotslab", benchBulkHotslab)
	registerCrossP("hotslab", benchCrossHotslab)
	registerGC("hotslab", populateHotslab)
}

var (
	hsOnce  sync.Once
	hsAlloc *slab.Allocator
	hsErr   error
)

// hotslab returns the benchmarks' allocator: two nodes of 1 GiB each
// (reserved; only touched pages become resident) in 128 MiB blocks.
func hotslab(b *testing.B) *slab.Allocator {
	hsOnce.Do(func() {
		sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 128 << 20, InitialPerNode: 1 << 30})
		if err != nil {
			hsErr = err
			return
		}
		hsAlloc, hsErr = slab.New(sys, nil)
	})
	if hsErr != nil {
		b.Fatal(hsErr)
	}
	return hsAlloc
}

func hotslabCache(b *testing.B) *slab.Cache {
	a := hotslab(b)
	c, ok := a.Lookup("bench-64")
	if !ok {
		var err error
		c, err = a.NewCache("bench-64", objSize, &slab.CacheOptions{Flags: slab.NoMerge})
		if err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func benchPairHotslab(b *testing.B) {
	c := hotslabCache(b)
	p, _ := c.Alloc() // warm the P's sheaf
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
}

func benchPairHotslabSheaf(b *testing.B) {
	c := hotslabCache(b)
	sh, err := c.PrefillSheaf(128)
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Return()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := sh.Alloc()
		*(*byte)(p) = byte(i)
		sh.Free(p)
	}
}

func benchPairParallelHotslab(b *testing.B) {
	c := hotslabCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p, err := c.Alloc()
			if err != nil {
				b.Error(err)
				return
			}
			*(*byte)(p) = byte(i)
			c.Free(p)
			i++
		}
	})
}

func benchBulkHotslab(b *testing.B) {
	c := hotslabCache(b)
	objs := make([]unsafe.Pointer, bulkN)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.AllocBulk(objs); err != nil {
			b.Fatal(err)
		}
		for j, p := range objs {
			*(*byte)(p) = byte(j)
		}
		c.FreeBulk(objs)
	}
}

func benchCrossHotslab(b *testing.B) {
	c := hotslabCache(b)
	runCrossP(b,
		func(i int) unsafe.Pointer {
			p, err := c.Alloc()
			if err != nil {
				panic(err)
			}
			*(*byte)(p) = byte(i)
			return p
		},
		func(p unsafe.Pointer) { c.Free(p) })
}

// populateHotslab allocates n 64-byte objects in hotslab. Their addresses
// are kept in a pointer-free []uintptr, as an application would keep
// indexes into off-heap memory: the GC scans nothing of them.
func populateHotslab(n int) func() {
	a := hotslab(nil)
	c, err := a.NewCache("gc-64", objSize, &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		panic(err)
	}
	return populateCache(c, c.Alloc, n, nil)
}

// populateCache allocates n objects of c with alloc, keeping their
// addresses in a []uintptr; the function it returns frees them, shrinks
// and destroys c, then runs done (if not nil).
func populateCache(c *slab.Cache, alloc func() (unsafe.Pointer, error), n int, done func() error) func() {
	addrs := make([]uintptr, n)
	for i := range addrs {
		p, err := alloc()
		if err != nil {
			panic(err)
		}
		*(*byte)(p) = byte(i)
		addrs[i] = uintptr(p)
	}
	return func() {
		for _, u := range addrs {
			c.Free(*(*unsafe.Pointer)(unsafe.Pointer(&u)))
		}
		c.Shrink()
		if err := c.Destroy(); err != nil {
			panic(err)
		}
		if done != nil {
			if err := done(); err != nil {
				panic(err)
			}
		}
	}
}
