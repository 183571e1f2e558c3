package slab_test

// Black-box tests of misbehaviours found by using hotslab through its
// public API as a new user would (issue 9). Each fails without its fix.

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// bbEnv is a System and an Allocator whose refused frees are recorded.
type bbEnv struct {
	sys *mem.System
	a   *slab.Allocator
	mu  sync.Mutex
	bad []*slab.InvalidFree
}

func newBB(t *testing.T, cfg mem.Config) *bbEnv {
	t.Helper()
	if cfg.Nodes == 0 {
		cfg = mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 64}
	}
	sys, err := mem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &bbEnv{sys: sys}
	e.a, err = slab.New(sys, &slab.Options{OnInvalidFree: func(f *slab.InvalidFree) {
		e.mu.Lock()
		e.bad = append(e.bad, f)
		e.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.a.Close()
		sys.Close()
	})
	return e
}

func (e *bbEnv) refused() []*slab.InvalidFree {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.bad
	e.bad = nil
	return b
}

func mustCache(t *testing.T, a *slab.Allocator, name string, size int, o *slab.CacheOptions) *slab.Cache {
	t.Helper()
	c, err := a.NewCache(name, size, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

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

// 2. Node-targeted allocations return objects of the node asked for while
// it has memory; ThisNode fails with ENOMEM once it has none; local
// allocations that fell back to another node leave no foreign objects in
// the P's sheaves.
func TestAllocNodeStrict(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "strict", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	node := func(p unsafe.Pointer) int { return e.sys.PageNode(uintptr(p)) }
	for n := 0; n < 2; n++ {
		var held []unsafe.Pointer
		for {
			p, err := c.AllocNode(n, slab.ThisNode)
			if err != nil {
				if !errors.Is(err, syscall.ENOMEM) || !errors.Is(err, slab.ErrNoMemory) {
					t.Fatalf("node %d exhausted: %v", n, err)
				}
				break
			}
			if got := node(p); got != n {
				t.Fatalf("AllocNode(%d, ThisNode) #%d gave node %d", n, len(held), got)
			}
			held = append(held, p)
		}
		// Node n is full: local allocations fall back to the other
		// node (whatever the P's node is, allocate enough to refill).
		var fallback []unsafe.Pointer
		for i := 0; i < 600; i++ {
			p, err := c.Alloc()
			if err != nil {
				t.Fatal(err)
			}
			fallback = append(fallback, p)
		}
		// Without ThisNode, n falls back too.
		p, err := c.AllocNode(n, 0)
		if err != nil {
			t.Fatal(err)
		}
		if node(p) == n {
			t.Fatalf("node %d is full, yet AllocNode gave one of its objects", n)
		}
		c.Free(p)
		// n's memory comes back: strict allocations are n's again,
		// well beyond what the frees put in any sheaf.
		for _, p := range held {
			c.Free(p)
		}
		for i := 0; i < len(held)/2; i++ {
			p, err := c.AllocNode(n, slab.ThisNode)
			if err != nil {
				t.Fatal(err)
			}
			if got := node(p); got != n {
				t.Fatalf("after node %d's memory came back: AllocNode(%d, ThisNode) #%d gave node %d", n, n, i, got)
			}
			held[i] = p
		}
		for _, p := range held[:len(held)/2] {
			c.Free(p)
		}
		for _, p := range fallback {
			c.Free(p)
		}
		c.Shrink()
	}
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("refused frees: %v", bad[0])
	}
}

// 2, under concurrency: goroutines migrating between Ps of different
// nodes; every node-specific allocation is of its node.
func TestAllocNodeStrictConcurrent(t *testing.T) {
	procs := 4
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "strict-conc", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	km := func(n int) (unsafe.Pointer, error) { return e.a.KmallocNode(40, n, slab.ThisNode) }
	iters := 40000
	if testing.Short() {
		iters = 5000
	}
	var wg sync.WaitGroup
	for g := 0; g < 2*procs; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var keepC, keepK []unsafe.Pointer
			release := func() {
				c.FreeBulk(keepC)
				for _, q := range keepK {
					e.a.Kfree(q)
				}
				keepC, keepK = keepC[:0], keepK[:0]
			}
			for i := 0; i < iters; i++ {
				n := (g + i) % 2
				var p unsafe.Pointer
				var err error
				if i%3 == 0 {
					p, err = km(n)
					keepK = append(keepK, p)
				} else {
					p, err = c.AllocNode(n, slab.ThisNode)
					keepC = append(keepC, p)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if got := e.sys.PageNode(uintptr(p)); got != n {
					t.Errorf("node-%d allocation on node %d", n, got)
					return
				}
				if len(keepC) > 200 || i%7 == 0 {
					release()
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
			release()
		}()
	}
	wg.Wait()
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("refused frees: %v", bad[0])
	}
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
	for _, size := range []int{32, 64, 96, 1024, 3000} {
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
	}
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
	if _, err := c.Alloc(); err == nil {
		t.Fatal("Alloc after Close served")
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
