package slab_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// Black-box tests of cache and allocator lifecycles: merging, one
// Allocator per System, permanent kmalloc caches, destroyed handles,
// krealloc, Close, and the small contracts (nil frees, UniqueID, error
// texts). Each failed before the fix of the misbehaviour it names
// (issue 9).

// 1. A merge raises the cache's object size to the largest alias's.
func TestMergeRaisesObjectSize(t *testing.T) {
	e := newBB(t, mem.Config{})
	a := mustCache(t, e.a, "a", 100, nil)
	b := mustCache(t, e.a, "b", 104, nil)
	if !b.Merged() {
		t.Fatalf("a (100) and b (104) did not merge: %s vs %s", a.UniqueID(), b.UniqueID())
	}
	for _, c := range []*slab.Cache{a, b} {
		if c.ObjectSize() != 104 {
			t.Errorf("%s: ObjectSize %d, want 104", c.Name(), c.ObjectSize())
		}
	}
	p, err := b.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	buf := unsafe.Slice((*byte)(p), 104)
	for i := range buf {
		buf[i] = 0xa5
	}
	b.Free(p)
	q, err := b.Zalloc()
	if err != nil {
		t.Fatal(err)
	}
	if q != p {
		t.Fatalf("Zalloc did not reuse the freed object (%p, %p)", q, p)
	}
	for i, v := range unsafe.Slice((*byte)(q), 104) {
		if v != 0 {
			t.Fatalf("Zalloc through b left byte %d = %#x", i, v)
		}
	}
	if n := e.a.Ksize(q); n != 104 {
		t.Errorf("Ksize %d, want 104", n)
	}
	b.Free(q)
	bs, err := b.AllocBytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 104 {
		t.Errorf("AllocBytes len %d, want 104", len(bs))
	}
	b.FreeBytes(bs)
}

// 3a. New with a bad Options.Debug spec is refused with EINVAL and leaves
// the System free: a later New over it succeeds.
func TestNewBadDebugSpecReleasesSystem(t *testing.T) {
	sys, err := mem.New(mem.Config{Nodes: 1, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	for _, spec := range []string{"FQ", "F,", "F,dentry-*-x,", "\x00"} {
		if a, err := slab.New(sys, &slab.Options{Debug: spec}); !errors.Is(err, syscall.EINVAL) {
			if a != nil {
				a.Close()
			}
			t.Fatalf("New with Debug %q: %v, want EINVAL", spec, err)
		}
	}
	a, err := slab.New(sys, &slab.Options{Debug: "FZ"})
	if err != nil {
		t.Fatalf("New after refused specs: %v", err)
	}
	defer a.Close()
	p, err := a.Kmalloc(64, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Kfree(p)
}

// 3. One System, one Allocator: a second is refused with EBUSY until the
// first is closed.
func TestSecondAllocatorRefused(t *testing.T) {
	e := newBB(t, mem.Config{})
	if b, err := slab.New(e.sys, nil); !errors.Is(err, syscall.EBUSY) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("second allocator over one System: %v", err)
	}
	c := mustCache(t, e.a, "first", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p)
	e.a.Close()
	b, err := slab.New(e.sys, nil)
	if err != nil {
		t.Fatalf("new allocator after Close: %v", err)
	}
	q, err := b.Kmalloc(64, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Kfree(q)
	b.Close()
}

// 5. The kmalloc caches are permanent, also through a merged alias.
func TestKmallocCachesPermanent(t *testing.T) {
	e := newBB(t, mem.Config{})
	alias := mustCache(t, e.a, "like-kmalloc-64", 64, nil)
	if !alias.Merged() {
		t.Fatal("a 64-byte cache did not merge into kmalloc-64")
	}
	for _, kc := range e.a.KmallocCaches() {
		if err := kc.Destroy(); !errors.Is(err, syscall.EPERM) {
			t.Fatalf("Destroy %s: %v", kc.Name(), err)
		}
	}
	if err := alias.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{8, 64, 100, 8192} {
		p, err := e.a.Kmalloc(size, 0)
		if err != nil {
			t.Fatalf("Kmalloc(%d) after the destroy attempts: %v", size, err)
		}
		e.a.Kfree(p)
	}
	if _, ok := e.a.Lookup("kmalloc-64"); !ok {
		t.Fatal("kmalloc-64 is gone")
	}
}

// 7. A destroyed alias handle neither allocates nor frees, even with the
// P's sheaf warm.
func TestDestroyedAliasRefuses(t *testing.T) {
	e := newBB(t, mem.Config{})
	a := mustCache(t, e.a, "alias-a", 200, nil)
	b := mustCache(t, e.a, "alias-b", 200, nil)
	if !b.Merged() {
		t.Fatal("no merge")
	}
	p, _ := a.Alloc()
	a.Free(p) // warm the P's sheaf
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	if q, err := b.Alloc(); !errors.Is(err, slab.ErrDestroyed) {
		t.Fatalf("Alloc through a destroyed alias: %p, %v", q, err)
	}
	if _, err := b.AllocNode(0, 0); !errors.Is(err, slab.ErrDestroyed) {
		t.Fatalf("AllocNode through a destroyed alias: %v", err)
	}
	if err := b.AllocBulk(make([]unsafe.Pointer, 4)); !errors.Is(err, slab.ErrDestroyed) {
		t.Fatalf("AllocBulk through a destroyed alias: %v", err)
	}
	p, _ = a.Alloc()
	b.Free(p)
	if bad := e.refused(); len(bad) != 1 || bad[0].Cache != "alias-b" {
		t.Fatalf("Free through a destroyed alias: %v", bad)
	}
	a.Free(p)
	if err := b.Destroy(); !errors.Is(err, slab.ErrDestroyed) {
		t.Fatalf("second Destroy: %v", err)
	}
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("valid free refused: %v", bad)
	}
}

// 8. Krealloc of an object of a non-kmalloc cache is refused, nothing
// changed.
func TestKreallocNonKmalloc(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "not-kmalloc", 200, &slab.CacheOptions{Flags: slab.NoMerge})
	p, _ := c.Alloc()
	*(*uint64)(p) = 77
	st0 := c.Stats()
	before := st0.ActiveObjects()
	q, err := e.a.Krealloc(p, 1000, 0)
	if !errors.Is(err, syscall.EINVAL) || q != nil {
		t.Fatalf("Krealloc of a cache object: %p, %v", q, err)
	}
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("reported: %v", bad)
	}
	if *(*uint64)(p) != 77 || func() int64 { s := c.Stats(); return s.ActiveObjects() }() != before {
		t.Fatal("the object changed")
	}
	c.Free(p)
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("free after the refused krealloc: %v", bad)
	}
	// A kmalloc object still moves.
	k, _ := e.a.Kmalloc(50, 0)
	*(*uint64)(k) = 5
	k2, err := e.a.Krealloc(k, 3000, 0)
	if err != nil || *(*uint64)(k2) != 5 || e.a.Ksize(k2) < 3000 {
		t.Fatalf("krealloc of a kmalloc object: %v", err)
	}
	e.a.Kfree(k2)
}

// 9 and Close: a large Kfree after Close is refused; Close frees every
// page the allocator holds, live objects included, so every block can go
// offline.
func TestCloseFreesEverything(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "live", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	for i := 0; i < 1000; i++ {
		if _, err := c.Alloc(); err != nil {
			t.Fatal(err)
		}
	}
	big, err := e.a.Kmalloc(64<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := e.a.Kmalloc(100, 0)
	sh, err := c.PrefillSheaf(10)
	if err != nil {
		t.Fatal(err)
	}
	_ = sh
	e.a.Close()
	e.a.Kfree(big)
	e.a.Kfree(small)
	if bad := e.refused(); len(bad) != 2 || bad[0].Fault != "allocator closed" {
		t.Fatalf("Kfree after Close: %v", bad)
	}
	if _, err := e.a.Kmalloc(64<<10, 0); err == nil {
		t.Fatal("large Kmalloc after Close served")
	}
	if _, err := c.Alloc(); !errors.Is(err, slab.ErrClosed) {
		t.Fatalf("Alloc after Close: %v", err)
	}
	if _, err := e.a.Kmalloc(64, 0); !errors.Is(err, slab.ErrClosed) {
		t.Fatalf("small Kmalloc after Close: %v", err)
	}
	if _, err := e.a.NewCache("after-close", 64, nil); !errors.Is(err, slab.ErrClosed) {
		t.Fatalf("NewCache after Close: %v", err)
	}
	for _, b := range e.sys.Blocks() {
		if b.UsedPages != 0 {
			t.Errorf("block %d: %d pages still used after Close", b.Index, b.UsedPages)
		}
		if err := e.sys.Offline(context.Background(), b.Index); err != nil {
			t.Errorf("offline block %d after Close: %v", b.Index, err)
		}
	}
}

// Also: Free(nil) is a no-op everywhere (with the default, panicking,
// report); unrelated unmergeable caches have distinct UniqueIDs; errors
// read once and name the caller's handle; ids of destroyed caches are
// reused.
func TestSmallContracts(t *testing.T) {
	sys, err := mem.New(mem.Config{Nodes: 1, BlockSize: 2 << 20, InitialPerNode: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	a, err := slab.New(sys, nil) // default OnInvalidFree panics
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := mustCache(t, a, "nil-free", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	c.Free(nil)
	c.FreeBulk([]unsafe.Pointer{nil, nil})
	a.Kfree(nil)
	sh, err := c.PrefillSheaf(2)
	if err != nil {
		t.Fatal(err)
	}
	sh.Free(nil)
	sh.Return()
	ty, err := slab.NewTyped[[4]uint64](a, "typed-nil", nil)
	if err != nil {
		t.Fatal(err)
	}
	ty.Free(nil)

	x := mustCache(t, a, "nomerge-x", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	y := mustCache(t, a, "nomerge-y", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	if x.UniqueID() == y.UniqueID() || x.UniqueID() == c.UniqueID() {
		t.Errorf("unmergeable caches share a UniqueID: %q %q %q", x.UniqueID(), y.UniqueID(), c.UniqueID())
	}
	ids := map[string]string{}
	for _, ci := range a.Caches() {
		if o, dup := ids[ci.UniqueID]; dup {
			t.Errorf("caches %s and %s share UniqueID %q", o, ci.Name, ci.UniqueID)
		}
		ids[ci.UniqueID] = ci.Name
	}

	m := mustCache(t, a, "merged-name", 56, nil) // into kmalloc-64
	_, err = m.AllocNode(5, 0)
	if err == nil || !strings.Contains(err.Error(), `"merged-name"`) || strings.Count(err.Error(), "invalid argument") != 1 {
		t.Errorf("error %q: want it to name the handle and say invalid argument once", err)
	}
	_, err = a.NewCache("bad", 0, nil)
	if err == nil || strings.Count(err.Error(), "invalid argument") != 1 || !strings.HasPrefix(err.Error(), "slab: ") {
		t.Errorf("error %q reads more than once", err)
	}
}

// A prefilled sheaf outlives neither its allocator nor its cache: after
// Close its Return does nothing (not even to a new Allocator over the
// same System, whose cache has the same id); Destroy refuses while one is
// out, even empty; a second Return does nothing.
func TestPrefilledSheafLifetime(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "pre", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	sh, err := c.PrefillSheaf(200)
	if err != nil {
		t.Fatal(err)
	}
	for p := sh.Alloc(); p != nil; p = sh.Alloc() {
		c.Free(p)
	}
	if err := c.Destroy(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Destroy with an empty prefilled sheaf out: %v", err)
	}
	sh.Return()
	returns := c.Stats().Counters[slab.SheafReturn]
	sh.Return()
	if got := c.Stats().Counters[slab.SheafReturn]; got != returns {
		t.Fatalf("a second Return counted: %d → %d", returns, got)
	}
	if err := sh.Refill(4); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Refill of a returned sheaf: %v", err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}

	c = mustCache(t, e.a, "pre2", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	sh, err = c.PrefillSheaf(200)
	if err != nil {
		t.Fatal(err)
	}
	sh.Alloc()
	e.a.Close()
	b, err := slab.New(e.sys, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c2, err := b.NewCache("pre2", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		t.Fatal(err)
	}
	live := make([]unsafe.Pointer, 300)
	if err := c2.AllocBulk(live); err != nil {
		t.Fatal(err)
	}
	st := c2.Stats()
	before := st.ActiveObjects()
	sh.Return() // the old allocator's: nothing may change in the new one
	st = c2.Stats()
	if st.ActiveObjects() != before {
		t.Fatalf("Return of a sheaf of a closed allocator changed the new one: %d → %d active", before, st.ActiveObjects())
	}
	more := make([]unsafe.Pointer, 300)
	if err := c2.AllocBulk(more); err != nil {
		t.Fatal(err)
	}
	seen := map[unsafe.Pointer]bool{}
	for _, p := range append(live, more...) {
		if seen[p] {
			t.Fatalf("%p handed out twice", p)
		}
		seen[p] = true
	}
	c2.FreeBulk(live)
	c2.FreeBulk(more)
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("refused: %v", bad)
	}
}

// A name that looks like a generated id does not share it.
func TestUniqueIDNameCollision(t *testing.T) {
	e := newBB(t, mem.Config{})
	x := mustCache(t, e.a, ":0000064", 10, &slab.CacheOptions{Flags: slab.NoMerge})
	k, _ := e.a.Lookup("kmalloc-64")
	if x.UniqueID() == k.UniqueID() {
		t.Fatalf("cache %q has kmalloc-64's UniqueID %q", x.Name(), k.UniqueID())
	}
}

// A prefilled sheaf or magazine pins the handle it was taken through,
// alias or not: Destroy refuses until it is returned or closed (it
// flushes through the handle). After Allocator.Close both are empty.
func TestOpenSheavesPinTheirHandle(t *testing.T) {
	e := newBB(t, mem.Config{})
	a := mustCache(t, e.a, "pin-a", 200, nil)
	b := mustCache(t, e.a, "pin-b", 200, nil)
	if !b.Merged() {
		t.Fatal("no merge")
	}
	m, err := b.NewMagazine(16)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		m.Free(m.Alloc())
	}
	sh, err := a.PrefillSheaf(4)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Destroy of an alias with a magazine open: %v", err)
	}
	if p, err := b.Alloc(); err != nil {
		t.Fatalf("the handle is not usable after the refused Destroy: %v", err)
	} else {
		b.Free(p)
	}
	m.Close()
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Destroy with a prefilled sheaf out: %v", err)
	}
	sh.Return()
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("refused: %v", bad)
	}

	c := mustCache(t, e.a, "pin-c", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	sh, err = c.PrefillSheaf(8)
	if err != nil {
		t.Fatal(err)
	}
	e.a.Close()
	if p := sh.Alloc(); p != nil {
		t.Fatalf("a prefilled sheaf hands out %p after Allocator.Close", p)
	}
	if sh.Len() != 0 {
		t.Fatalf("Len %d after Allocator.Close", sh.Len())
	}
	sh.Return()
}
