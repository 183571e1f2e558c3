package slab_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// Black-box tests of double-free detection on every free path (issue 9,
// items 4 and 6).

// 4. FreeBulk refuses what Free refuses as a double free, and duplicates
// inside one batch.
func TestFreeBulkDoubleFree(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "bulk-df", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	p, _ := c.Alloc()
	q, _ := c.Alloc()
	c.Free(p)
	c.FreeBulk([]unsafe.Pointer{p})
	if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
		t.Fatalf("Free(p); FreeBulk({p}): %v", bad)
	}
	p, _ = c.Alloc()
	r, _ := c.Alloc()
	c.FreeBulk([]unsafe.Pointer{p, q, r, p})
	if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") || bad[0].Addr != uintptr(p) {
		t.Fatalf("FreeBulk({p, q, r, p}): %v", bad)
	}
	seen := map[unsafe.Pointer]bool{}
	objs := make([]unsafe.Pointer, 300)
	if err := c.AllocBulk(objs); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if seen[o] {
			t.Fatalf("object %p handed out twice", o)
		}
		seen[o] = true
	}
	c.FreeBulk(objs)
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("valid bulk free refused: %v", bad)
	}
	// Every validation path: power-of-two sizes with up to 64 and with
	// more objects per slab, other sizes, multi-page slabs; duplicates
	// within one slab's run and across slabs, adjacent and far apart.
	for _, size := range []int{8, 16, 32, 64, 96, 1024, 3000} {
		c := mustCache(t, e.a, "bulk-dup-"+strconv.Itoa(size), size, &slab.CacheOptions{Flags: slab.NoMerge})
		// A fresh cache's first few objects share its first slab.
		few := make([]unsafe.Pointer, 8)
		if err := c.AllocBulk(few); err != nil {
			t.Fatal(err)
		}
		lost := few[7]
		few[7] = few[2]
		c.FreeBulk(few)
		if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
			t.Fatalf("size %d, a duplicate in a batch of one slab: %v", size, bad)
		}
		c.Free(lost)
		objs := make([]unsafe.Pointer, 200)
		for _, dup := range [][2]int{{0, 1}, {3, 60}, {10, 199}, {150, 151}} {
			if err := c.AllocBulk(objs); err != nil {
				t.Fatal(err)
			}
			batch := append([]unsafe.Pointer(nil), objs...)
			lost := batch[dup[1]]
			batch[dup[1]] = batch[dup[0]]
			c.FreeBulk(batch)
			if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") || bad[0].Addr != uintptr(batch[dup[0]]) {
				t.Fatalf("size %d, objects %d and %d the same: %v", size, dup[0], dup[1], bad)
			}
			c.Free(lost)
			if bad := e.refused(); len(bad) != 0 {
				t.Fatalf("size %d: %v", size, bad)
			}
			if err := c.AllocBulk(objs); err != nil {
				t.Fatal(err)
			}
			seen := map[unsafe.Pointer]bool{}
			for _, o := range objs {
				if seen[o] {
					t.Fatalf("size %d: %p handed out twice", size, o)
				}
				seen[o] = true
			}
			c.FreeBulk(objs)
			if bad := e.refused(); len(bad) != 0 {
				t.Fatalf("size %d: valid batch refused: %v", size, bad)
			}
		}
		// Shuffled batches: a slab's objects in several runs, a
		// duplicate in another run of the same slab.
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		for round := 0; round < 20; round++ {
			if err := c.AllocBulk(objs); err != nil {
				t.Fatal(err)
			}
			rng.Shuffle(len(objs), func(i, j int) { objs[i], objs[j] = objs[j], objs[i] })
			n := 2 + rng.IntN(len(objs)-2)
			batch := append([]unsafe.Pointer(nil), objs[:n]...)
			if round%2 == 0 {
				c.FreeBulk(batch)
				if bad := e.refused(); len(bad) != 0 {
					t.Fatalf("size %d: valid shuffled batch of %d refused: %v", size, n, bad)
				}
			} else {
				i, j := rng.IntN(n), rng.IntN(n)
				for i == j {
					j = rng.IntN(n)
				}
				lost := batch[j]
				batch[j] = batch[i]
				c.FreeBulk(batch)
				if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
					t.Fatalf("size %d: shuffled batch of %d, objects %d and %d the same: %v", size, n, i, j, bad)
				}
				c.Free(lost)
				if bad := e.refused(); len(bad) != 0 {
					t.Fatalf("size %d: %v", size, bad)
				}
			}
			c.FreeBulk(objs[n:])
		}
	}
}

// 6. Free, Shrink, Free again: the object heads its slab's freelist.
func TestDoubleFreeAfterShrink(t *testing.T) {
	e := newBB(t, mem.Config{})
	for _, size := range []int{64, 96} { // mask and reciprocal checks
		c := mustCache(t, e.a, "df-shrink-"+string(rune('a'+size%26)), size, &slab.CacheOptions{Flags: slab.NoMerge})
		p, _ := c.Alloc()
		q, _ := c.Alloc() // keeps the slab alive through the shrink
		c.Free(p)
		c.Shrink()
		c.Free(p)
		if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
			t.Fatalf("size %d: Free, Shrink, Free: %v", size, bad)
		}
		x, _ := c.Alloc()
		y, _ := c.Alloc()
		if x == y {
			t.Fatalf("size %d: one object handed out twice", size)
		}
		c.Free(x)
		c.Free(y)
		c.Free(q)
		if bad := e.refused(); len(bad) != 0 {
			t.Fatalf("valid frees refused: %v", bad)
		}
	}
	// Objects beyond the first page of a multi-page slab (the head page is
	// not the object's page), power-of-two and other sizes.
	for _, size := range []int{1024, 1000} {
		c := mustCache(t, e.a, "df-big-"+string(rune('a'+size%26)), size, &slab.CacheOptions{Flags: slab.NoMerge})
		objs := make([]unsafe.Pointer, 64)
		if err := c.AllocBulk(objs); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(objs); i += 3 {
			c.Free(objs[i])
			c.Shrink()
			c.Free(objs[i])
			if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
				t.Fatalf("size %d, object %d: Free, Shrink, Free: %v", size, i, bad)
			}
			objs[i] = nil
		}
		c.FreeBulk(objs)
		c.Shrink()
		if st := c.Stats(); st.ActiveObjects() != 0 || st.Slabs() != 0 {
			t.Fatalf("size %d: %d active in %d slabs after freeing all", size, st.ActiveObjects(), st.Slabs())
		}
		if bad := e.refused(); len(bad) != 0 {
			t.Fatalf("valid frees refused: %v", bad)
		}
	}
}

// FreeBulk refuses an object that heads its slab's freelist (freed, and
// back in its slab), as Free does, and frees the rest of the batch.
func TestFreeBulkFreelistHead(t *testing.T) {
	e := newBB(t, mem.Config{})
	for _, size := range []int{64, 96} { // mask and reciprocal runs
		c := mustCache(t, e.a, "bulk-head-"+strconv.Itoa(size), size, &slab.CacheOptions{Flags: slab.NoMerge})
		objs := make([]unsafe.Pointer, 3)
		if err := c.AllocBulk(objs); err != nil {
			t.Fatal(err)
		}
		c.Free(objs[1])
		c.Shrink() // objs[1] heads its slab's freelist; the others keep the slab
		c.FreeBulk([]unsafe.Pointer{objs[0], objs[1], objs[2]})
		if bad := e.refused(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") || bad[0].Addr != uintptr(objs[1]) {
			t.Fatalf("size %d: FreeBulk with a freelist head: %v", size, bad)
		}
		c.Shrink()
		if st := c.Stats(); st.ActiveObjects() != 0 {
			t.Fatalf("size %d: %d objects still active", size, st.ActiveObjects())
		}
	}
}
