package slab_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"syscall"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
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

// Per-tenant accounting: objects of an Account cache allocated through a
// group's handle are charged to the group (their slot plus the 4-byte
// per-object reference: 260 bytes here) and every ancestor; at
// memory.max (16 KiB: 63 objects) allocation fails with ENOMEM.
func ExampleCache_In() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	tenant, _ := a.Memcg().Root().Create("tenant")
	_ = tenant.SetMax(16 << 10)
	c, _ := a.NewCache("request", 256, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	h := c.In(tenant)
	var objs []unsafe.Pointer
	for {
		p, err := h.Alloc()
		if errors.Is(err, syscall.ENOMEM) {
			break
		}
		objs = append(objs, p)
	}
	a.Memcg().Drain()
	fmt.Println(len(objs), tenant.Current())
	for _, p := range objs {
		c.Free(p)
	}
	a.Memcg().Drain()
	fmt.Println(tenant.Current())
	// Output:
	// 63 16380
	// 0
}

// The group can travel in a context, as the kernel's "current task's
// memcg" does: KmallocContext charges it through the kmalloc-cg-N caches.
func ExampleAllocator_KmallocContext() {
	sys, a := newAllocator()
	defer sys.Close()
	defer a.Close()
	g, _ := a.Memcg().Root().Create("job")
	ctx := memcg.NewContext(context.Background(), g)
	p, err := a.KmallocContext(ctx, 100, 0) // kmalloc-cg-112
	if err != nil {
		log.Fatal(err)
	}
	a.Memcg().Drain()
	stat, _ := g.FileContents("memory.stat")
	fmt.Print(stat)
	a.Kfree(p)
	// Output:
	// anon 0
	// file 0
	// kernel 116
	// slab_reclaimable 0
	// slab_unreclaimable 116
	// slab 116
}
