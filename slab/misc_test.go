// Invalid frees, prefilled sheaves, bulk operations, frees after Close.

package slab

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// Every kind of invalid free is refused, reported and changes nothing.
func TestInvalidFrees(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("victim", 96, &CacheOptions{Flags: NoMerge})
	other := e.cache("other", 96, &CacheOptions{Flags: NoMerge})
	p, _ := c.Alloc()
	q, _ := other.Alloc()
	goHeap := new([96]byte)
	page, err := e.sys.AllocPages(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Stats()
	cases := []struct {
		ptr   unsafe.Pointer
		fault string
	}{
		{unsafe.Pointer(goHeap), "not in hotslab memory"},
		{ptr(page), "not a slab page"},
		{unsafe.Add(p, 8), "not the start of an object"},
		{q, "belongs to cache other"},
		// In the range, in a block never added: its struct page is in the
		// read-only part of the vmemmap (zeros), which the fast path reads.
		{ptr(e.sys.Base() + uintptr(memCfg().MaxBlocks-1)*uintptr(e.size) + 64), "not in hotslab memory"},
	}
	sh, err := c.PrefillSheaf(4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		c.Free(tc.ptr)
		bad := e.invalid()
		if len(bad) != 1 || !strings.Contains(bad[0].Fault, tc.fault) || bad[0].Cache != "victim" {
			t.Fatalf("free of %p: got %+v, want %q", tc.ptr, bad, tc.fault)
		}
		n := sh.Len()
		sh.Free(tc.ptr)
		bad = e.invalid()
		if len(bad) != 1 || !strings.Contains(bad[0].Fault, tc.fault) || sh.Len() != n {
			t.Fatalf("sheaf free of %p: got %+v (len %d → %d), want %q", tc.ptr, bad, n, sh.Len(), tc.fault)
		}
	}
	sh.Return()
	// Double free caught on the fast path (top of the sheaf): one P, so
	// both frees see the same sheaf...
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c.Free(p)
	c.Free(p)
	if bad := e.invalid(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
		t.Fatalf("double free: %+v", bad)
	}
	// ...and on the slab after a flush.
	c.Shrink()
	r, _ := c.Alloc()
	s, _ := e.a.slabOf(uintptr(r))
	node := int(s.node)
	c.Free(r)
	c.Shrink() // r's slab is gone (header cleared) or r is on its freelist
	if s.cache == c.c.id && s.inuse == 0 && c.c.nodes[node].Load().nrSlabs > 0 {
		c.Free(r)
		if bad := e.invalid(); len(bad) != 1 {
			t.Fatalf("double free on slab not caught: %+v", bad)
		}
	} else {
		c.Free(r) // slab discarded: the page is no longer a slab page
		if bad := e.invalid(); len(bad) != 1 {
			t.Fatalf("free into a discarded slab not caught: %+v", bad)
		}
	}
	e.a.Kfree(unsafe.Pointer(goHeap))
	if bad := e.invalid(); len(bad) != 1 {
		t.Fatalf("kfree of a Go pointer: %+v", bad)
	}
	other.Free(q)
	// State intact: no object handed out twice afterwards.
	seen := map[unsafe.Pointer]bool{}
	for i := 0; i < 2000; i++ {
		x, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if seen[x] {
			t.Fatalf("%p handed out twice after invalid frees", x)
		}
		seen[x] = true
	}
	for x := range seen {
		c.Free(x)
	}
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 {
		t.Fatalf("%d slabs left (before: %d)", st.Slabs(), before.Slabs())
	}
	if err := e.sys.FreePages(page, 0); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultInvalidFreePanics(t *testing.T) {
	sys, err := mem.New(memCfg())
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	a, err := New(sys, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer func() {
		v := recover()
		if v == nil || !strings.Contains(v.(string), "invalid kfree") {
			t.Fatalf("recovered %v", v)
		}
	}()
	a.Kfree(unsafe.Pointer(new(int64)))
}

type point struct {
	X, Y, Z int64
	Tag     [8]byte
}

func TestPrefilledSheaf(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("sheafy", 64, &CacheOptions{Flags: NoMerge})
	sh, err := c.PrefillSheaf(300)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Len() < 300 {
		t.Fatalf("prefilled %d", sh.Len())
	}
	seen := map[unsafe.Pointer]bool{}
	n := sh.Len()
	for i := 0; i < n; i++ {
		p := sh.Alloc()
		if p == nil || seen[p] {
			t.Fatalf("object %d: %p", i, p)
		}
		seen[p] = true
	}
	if sh.Alloc() != nil {
		t.Fatal("empty sheaf returned an object")
	}
	for p := range seen {
		sh.Free(p)
	}
	if err := sh.Refill(400); err != nil || sh.Len() != 400 {
		t.Fatalf("refill: %d %v", sh.Len(), err)
	}
	sh.Return()
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 {
		t.Fatalf("%d slabs after return+shrink", st.Slabs())
	}
	if _, err := c.PrefillSheaf(0); !errors.Is(err, ErrInvalid) {
		t.Fatal("prefill 0 accepted")
	}
}

func TestBulk(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("bulky", 64, &CacheOptions{Flags: NoMerge})
	objs := make([]unsafe.Pointer, 1000)
	if err := c.AllocBulk(objs); err != nil {
		t.Fatal(err)
	}
	seen := map[unsafe.Pointer]bool{}
	for _, p := range objs {
		if p == nil || seen[p] {
			t.Fatalf("bulk gave %p twice or nil", p)
		}
		seen[p] = true
	}
	c.FreeBulk(objs)
	// A bad pointer in a bulk free is reported; the good ones are freed.
	if err := c.AllocBulk(objs[:10]); err != nil {
		t.Fatal(err)
	}
	saved := objs[5]
	objs[5] = unsafe.Pointer(new(int64))
	c.FreeBulk(objs[:10])
	if bad := e.invalid(); len(bad) != 1 {
		t.Fatalf("bulk bad pointer: %+v", bad)
	}
	c.Free(saved)
	// First in the batch (nothing cached yet), a nil, a foreign pointer,
	// an object's interior and another cache's object are refused too.
	other := e.cache("bulky-other", 64, &CacheOptions{Flags: NoMerge})
	alien, err := other.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range []func(unsafe.Pointer) unsafe.Pointer{
		func(unsafe.Pointer) unsafe.Pointer { return nil },
		func(unsafe.Pointer) unsafe.Pointer { return unsafe.Pointer(new(int64)) },
		func(p unsafe.Pointer) unsafe.Pointer { return unsafe.Add(p, 8) },
		func(unsafe.Pointer) unsafe.Pointer { return alien },
	} {
		for _, at := range []int{0, 7} {
			if err := c.AllocBulk(objs[:10]); err != nil {
				t.Fatal(err)
			}
			saved := objs[at]
			objs[at] = bad(saved)
			c.FreeBulk(objs[:10])
			want := 1
			if i == 0 {
				want = 0 // nil entries are skipped, as the kernel does
			}
			if got := e.invalid(); len(got) != want {
				t.Fatalf("bad pointer %d at %d: %+v", i, at, got)
			}
			c.Free(saved)
		}
	}
	other.Free(alien)
	if bad := e.invalid(); len(bad) != 0 {
		t.Fatalf("%+v", bad)
	}
	c.Shrink()
	if st := c.Stats(); st.ActiveObjects() != 0 || st.Slabs() != 0 {
		t.Fatalf("active %d slabs %d", st.ActiveObjects(), st.Slabs())
	}
}

// A prefilled sheaf refuses what Cache.Free refuses, and bad sizes.
func TestSheafBadInput(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("sheaf-bad", 64, &CacheOptions{Flags: NoMerge})
	other := e.cache("sheaf-other", 64, &CacheOptions{Flags: NoMerge})
	sh, err := c.PrefillSheaf(8)
	if err != nil {
		t.Fatal(err)
	}
	p := sh.Alloc()
	q, _ := other.Alloc()
	n := sh.Len()
	for _, bad := range []unsafe.Pointer{unsafe.Pointer(new([64]byte)), unsafe.Add(p, 4), q} {
		sh.Free(bad)
		if got := e.invalid(); len(got) != 1 {
			t.Fatalf("sheaf free of %p: %+v", bad, got)
		}
		if sh.Len() != n {
			t.Fatalf("refused free changed the sheaf: %d != %d", sh.Len(), n)
		}
	}
	sh.Free(p)
	sh.Free(p)
	if got := e.invalid(); len(got) != 1 || !strings.HasPrefix(got[0].Fault, "double free") {
		t.Fatalf("sheaf double free: %+v", got)
	}
	for _, n := range []int{0, -1, 1<<16 + 1} {
		if err := sh.Refill(n); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("Refill(%d): %v", n, err)
		}
		if _, err := c.PrefillSheaf(n); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("PrefillSheaf(%d): %v", n, err)
		}
	}
	sh.Return()
	other.Free(q)
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 {
		t.Fatalf("%d slabs left", st.Slabs())
	}
}

// The free fast path checks an object's start by mask for power-of-two
// sizes and by reciprocal otherwise: interior pointers, and the last byte
// of a slab's tail, are refused for both kinds, and the object stays
// allocated.
func TestInteriorFrees(t *testing.T) {
	e := newEnv(t, memCfg())
	for _, size := range []int{64, 96, 192, 1024} {
		c := e.cache(fmt.Sprintf("interior-%d", size), size, &CacheOptions{Flags: NoMerge})
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		h := c.c.hdrAt(uintptr(p))
		tail := h.base + uintptr(mem.PageSize<<c.c.order) - 1
		for _, q := range []unsafe.Pointer{unsafe.Add(p, 1), unsafe.Add(p, 8), unsafe.Add(p, size-1), ptr(tail)} {
			c.Free(q)
			if bad := e.invalid(); len(bad) != 1 || !strings.Contains(bad[0].Fault, "not the start of an object") {
				t.Fatalf("size %d: free of %p (object %p): %+v", size, q, p, bad)
			}
		}
		if st := c.Stats(); st.ActiveObjects() == 0 {
			t.Fatalf("size %d: the object is no longer allocated", size)
		}
		c.Free(p)
		if bad := e.invalid(); len(bad) != 0 {
			t.Fatalf("size %d: valid free refused: %+v", size, bad)
		}
	}
}

// After Allocator.Close and System.Close a free is refused and reported,
// never a read of the unmapped vmemmap (the fast paths see an empty range).
func TestFreeAfterClose(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("after-close", 64, &CacheOptions{Flags: NoMerge})
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := c.PrefillSheaf(2)
	if err != nil {
		t.Fatal(err)
	}
	q := sh.Alloc()
	e.a.Close()
	if err := e.sys.Close(); err != nil {
		t.Fatal(err)
	}
	c.Free(p)
	sh.Free(q)
	bad := e.invalid()
	if len(bad) != 2 || bad[0].Fault != "allocator closed" || bad[1].Fault != "allocator closed" {
		t.Fatalf("frees after close: %+v", bad)
	}
}
