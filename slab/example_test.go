package slab_test

import (
	"fmt"
	"log"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

func newAllocator() (*mem.System, *slab.Allocator) {
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20})
	if err != nil {
		log.Fatal(err)
	}
	a, err := slab.New(sys, nil)
	if err != nil {
		log.Fatal(err)
	}
	return sys, a
}

// A cache of 48-byte objects: allocate, use, free, destroy.
func ExampleAllocator_NewCache() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()

	c, err := a.NewCache("session", 48, &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.Alloc()
	if err != nil {
		log.Fatal(err)
	}
	*(*uint64)(p) = 42
	c.Free(p)
	fmt.Println(c.Name(), c.Size(), c.Stats().ObjsPerSlab)
	fmt.Println(c.Destroy())
	// Output:
	// session 48 85
	// <nil>
}

// A cache compatible with kmalloc-64 becomes an alias of it.
func ExampleAllocator_NewCache_merging() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	c, _ := a.NewCache("my-60-byte-thing", 60, nil)
	fmt.Println(c.Merged(), c.UniqueID())
	// Output: true :0000064
}

type entry struct {
	Key, Value uint64
	Hits       uint32
}

// Typed caches hand out *T for pointer-free T.
func ExampleNewTyped() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	entries, err := slab.NewTyped[entry](a, "entries", nil)
	if err != nil {
		log.Fatal(err)
	}
	e, _ := entries.New()
	e.Key, e.Value = 1, 2
	fmt.Println(*e)
	entries.Free(e)

	_, err = slab.NewTyped[struct{ Name string }](a, "bad", nil)
	fmt.Println(err)
	// Output:
	// {1 2 0}
	// slab: cache "bad": type struct { Name string } holds a Go pointer at struct { Name string }.Name (string); off-heap objects must be pointer-free: invalid argument
}

// A prefilled sheaf serves a hot loop with no pinning and cannot fail.
func ExampleCache_PrefillSheaf() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	c, _ := a.NewCache("events", 32, nil)
	sh, err := c.PrefillSheaf(100)
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		p := sh.Alloc() // never nil: 100 objects were reserved
		*(*byte)(p) = byte(i)
		sh.Free(p)
	}
	sh.Return()
	fmt.Println("ok")
	// Output: ok
}

// kmalloc: size classes up to 8 KiB, pages beyond.
func ExampleAllocator_Kmalloc() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	p, _ := a.Kmalloc(100, 0)
	q, _ := a.Kmalloc(20000, slab.Zero)
	fmt.Println(a.Ksize(p), a.Ksize(q))
	a.Kfree(p)
	a.Kfree(q)
	// Output: 112 32768
}

// A magazine for a hot loop: Alloc is inlined into the loop and Free is
// one call with no P lookup; both refill from and flush to the cache in
// halves. Close gives the objects back.
func ExampleCache_NewMagazine() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	c, _ := a.NewCache("packet", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	m, err := c.NewMagazine(0)
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		p := m.Alloc()
		if p == nil {
			log.Fatal(m.Err())
		}
		*(*uint64)(p) = uint64(i)
		m.Free(p)
	}
	fmt.Println(m.Len() > 0, m.Cap())
	m.Close()
	fmt.Println(c.Destroy())
	// Output:
	// true 128
	// <nil>
}
