package slab

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

func fill(p unsafe.Pointer, n int, v byte) {
	b := unsafe.Slice((*byte)(p), n)
	for i := range b {
		b[i] = v
	}
}

func check(t testing.TB, p unsafe.Pointer, n int, v byte) {
	t.Helper()
	b := unsafe.Slice((*byte)(p), n)
	for i := range b {
		if b[i] != v {
			t.Fatalf("object %p byte %d = %#x, want %#x", p, i, b[i], v)
		}
	}
}

func TestAllocFree(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("test-obj", 100, &CacheOptions{Flags: NoMerge})
	seen := map[uintptr]bool{}
	var objs []unsafe.Pointer
	for i := 0; i < 5000; i++ {
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if seen[uintptr(p)] {
			t.Fatalf("object %p handed out twice", p)
		}
		seen[uintptr(p)] = true
		fill(p, 100, byte(i))
		objs = append(objs, p)
	}
	for i, p := range objs {
		check(t, p, 100, byte(i))
		c.Free(p)
	}
	st := c.Stats()
	if st.Size != 104 || st.ObjectSize != 100 {
		t.Fatalf("size %d object size %d", st.Size, st.ObjectSize)
	}
	if got := st.Counters[AllocFastpath] + st.Counters[AllocSlowpath]; got < 5000 {
		t.Fatalf("alloc counters %d < 5000", got)
	}
	c.Shrink()
	st = c.Stats()
	if st.Slabs() != 0 || st.ActiveObjects() != 0 {
		t.Fatalf("after free+shrink: %d slabs, %d active", st.Slabs(), st.ActiveObjects())
	}
	if st.Counters[AllocSlab] == 0 || st.Counters[FreeSlab] == 0 {
		t.Fatalf("slab counters %d/%d", st.Counters[AllocSlab], st.Counters[FreeSlab])
	}
	if len(e.invalid()) != 0 {
		t.Fatal("spurious invalid free")
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestNewCacheInvalid(t *testing.T) {
	e := newEnv(t, memCfg())
	before := len(e.a.Caches())
	cases := []struct {
		name  string
		size  int
		opts  *CacheOptions
		match string
	}{
		{"zero", 0, nil, "object size 0"},
		{"neg", -5, nil, "object size -5"},
		{"huge", MaxSize + 1, nil, "object size"},
		{"align3", 64, &CacheOptions{Align: 3}, "alignment 3"},
		{"alignbig", 64, &CacheOptions{Align: 8192}, "alignment 8192"},
		{"flags", 64, &CacheOptions{Flags: 1 << 30}, "unknown flags"},
		{"", 64, nil, "cache name"},
		{"has space", 64, nil, "cache name"},
		{"a/b", 64, nil, "cache name"},
	}
	for _, tc := range cases {
		c, err := e.a.NewCache(tc.name, tc.size, tc.opts)
		if err == nil || c != nil {
			t.Fatalf("%q: created", tc.name)
		}
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("%q: %v is not EINVAL", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.match) {
			t.Fatalf("%q: %v does not mention %q", tc.name, err, tc.match)
		}
		if _, ok := e.a.Lookup(tc.name); ok {
			t.Fatalf("%q registered", tc.name)
		}
	}
	if n := len(e.a.Caches()); n != before {
		t.Fatalf("%d caches after refused creates, want %d", n, before)
	}
	e.cache("dup", 64, &CacheOptions{Flags: NoMerge})
	if _, err := e.a.NewCache("dup", 64, nil); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("duplicate name: %v", err)
	}
}

func TestMerging(t *testing.T) {
	e := newEnv(t, memCfg())
	a := e.cache("my-60", 60, nil)
	if !a.Merged() || a.UniqueID() != ":0000064" {
		t.Fatalf("60-byte cache: merged %v id %s", a.Merged(), a.UniqueID())
	}
	k64, _ := e.a.Lookup("kmalloc-64")
	if a.c != k64.c {
		t.Fatal("not aliased to kmalloc-64")
	}
	// Each of these must get a cache of its own.
	noMerge := e.cache("nomerge-64", 64, &CacheOptions{Flags: NoMerge})
	ctor := e.cache("ctor-64", 64, &CacheOptions{Ctor: func(unsafe.Pointer) {}})
	acct := e.cache("acct-64", 64, &CacheOptions{Flags: Account})
	for _, c := range []*Cache{noMerge, ctor, acct} {
		if c.c == k64.c {
			t.Fatalf("%s merged with kmalloc-64", c.Name())
		}
	}
	if acct.UniqueID() != ":A-0000064" {
		t.Fatalf("account id %s", acct.UniqueID())
	}
	acct2 := e.cache("acct-2", 56, nil) // no Account flag: not with acct
	if acct2.c == acct.c {
		t.Fatal("merged caches with different SLAB_ACCOUNT")
	}
	acct3 := e.cache("acct-3", 64, &CacheOptions{Flags: Account})
	if acct3.c != acct.c {
		t.Fatal("two Account caches of one size not merged")
	}
	// Alignment: a 64-aligned 40-byte cache cannot join the 48 slot.
	e.cache("obj-48", 48, &CacheOptions{Flags: NoMerge})
	al := e.cache("al-40", 40, &CacheOptions{Align: 64})
	if al.Size() != 64 {
		t.Fatalf("aligned cache slot %d", al.Size())
	}
	// Destroying an alias leaves the cache and other names alone.
	p, err := a.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.a.Lookup("my-60"); ok {
		t.Fatal("alias name survived destroy")
	}
	k64.Free(p) // same underlying cache
	if err := a.Destroy(); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("second destroy: %v", err)
	}
	if _, err := a.Alloc(); err == nil {
		// The fast path may still serve a destroyed alias from the
		// shared cache; the slow path must refuse.
		t.Log("destroyed alias served from the shared sheaf")
	}
}

func TestDestroyWithObjects(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("busy", 200, &CacheOptions{Flags: NoMerge})
	var objs []unsafe.Pointer
	for i := 0; i < 3; i++ {
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, p)
	}
	err := c.Destroy()
	if !errors.Is(err, ErrBusy) || !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("destroy with objects: %v", err)
	}
	if !strings.Contains(err.Error(), "busy") || !strings.Contains(err.Error(), "3 in use") {
		t.Fatalf("error does not name the cache and count: %v", err)
	}
	// Still usable.
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, p)
	for _, p := range objs {
		c.Free(p)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Alloc(); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("alloc after destroy: %v", err)
	}
	if _, ok := e.a.Lookup("busy"); ok {
		t.Fatal("destroyed cache still listed")
	}
}

func TestConstructor(t *testing.T) {
	e := newEnv(t, memCfg())
	calls := 0
	c := e.cache("ctor", 32, &CacheOptions{Ctor: func(p unsafe.Pointer) {
		calls++
		fill(p, 32, 0xc7)
	}})
	var objs []unsafe.Pointer
	for i := 0; i < 300; i++ {
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		check(t, p, 32, 0xc7) // the free pointer did not clobber it
		objs = append(objs, p)
	}
	for _, p := range objs {
		c.Free(p)
	}
	for i := 0; i < 300; i++ {
		p, _ := c.Alloc()
		check(t, p, 32, 0xc7) // constructed state survives free/alloc
		c.Free(p)
	}
	if calls == 0 || calls%c.Stats().ObjsPerSlab != 0 {
		t.Fatalf("ctor calls %d not whole slabs", calls)
	}
}
