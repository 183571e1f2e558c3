package slab_test

// Documented behaviour of the smaller parts of the API, exercised as a
// user would: prefilled sheaves, statistics, typed caches, zeroing.

import (
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

func TestSheafContract(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "sheafy", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	sh, err := c.PrefillSheaf(5)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Len() < 5 || sh.Cap() < sh.Len() {
		t.Fatalf("PrefillSheaf(5): Len %d Cap %d", sh.Len(), sh.Cap())
	}
	st := c.Stats()
	if st.ActiveObjects() < int64(sh.Len()) {
		t.Fatalf("objects in a prefilled sheaf count as allocated: active %d, sheaf %d", st.ActiveObjects(), sh.Len())
	}
	n := sh.Len()
	var got []unsafe.Pointer
	for p := sh.Alloc(); p != nil; p = sh.Alloc() {
		got = append(got, p)
	}
	if len(got) != n || sh.Len() != 0 {
		t.Fatalf("drained %d of %d, Len %d", len(got), n, sh.Len())
	}
	for _, p := range got {
		sh.Free(p)
	}
	if sh.Len() != n {
		t.Fatalf("Len %d after freeing %d back", sh.Len(), n)
	}
	// Refill beyond the capacity grows the sheaf.
	want := sh.Cap() + 50
	if err := sh.Refill(want); err != nil {
		t.Fatal(err)
	}
	if sh.Len() != want || sh.Cap() < want {
		t.Fatalf("Refill(%d): Len %d Cap %d", want, sh.Len(), sh.Cap())
	}
	p := sh.Alloc()
	sh.Return()
	if q := sh.Alloc(); q != nil {
		t.Fatal("Alloc from a returned sheaf served")
	}
	sh.Free(p) // goes to the cache
	sh.Return()
	if bad := e.refused(); len(bad) != 0 {
		t.Fatalf("refused: %v", bad)
	}
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 || st.ActiveObjects() != 0 {
		t.Fatalf("after Return and Shrink: %d slabs, %d active", st.Slabs(), st.ActiveObjects())
	}
}

func TestStatsContract(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "stats", 200, &slab.CacheOptions{Flags: slab.NoMerge})
	objs := make([]unsafe.Pointer, 1000)
	if err := c.AllocBulk(objs); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Name != "stats" || st.ObjectSize != 200 || st.Size < 200 || st.ObjsPerSlab <= 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.Objects() != st.Slabs()*int64(st.ObjsPerSlab) {
		t.Errorf("Objects %d != Slabs %d × %d", st.Objects(), st.Slabs(), st.ObjsPerSlab)
	}
	if st.ActiveObjects() < 1000 || st.ActiveObjects() > st.Objects() {
		t.Errorf("ActiveObjects %d of %d slots, 1000 live", st.ActiveObjects(), st.Objects())
	}
	// Free every other object: slabs become partial.
	for i := 0; i < len(objs); i += 2 {
		c.Free(objs[i])
	}
	c.Shrink()
	st = c.Stats()
	if st.PartialSlabs() == 0 || st.PartialSlabs() > st.Slabs() {
		t.Errorf("PartialSlabs %d of %d slabs with every other object freed", st.PartialSlabs(), st.Slabs())
	}
	if st.ActiveObjects() != 500 {
		t.Errorf("ActiveObjects %d after shrink, want 500", st.ActiveObjects())
	}
	for i := 1; i < len(objs); i += 2 {
		c.Free(objs[i])
	}
	c.Shrink()
	st = c.Stats()
	if st.Slabs() != 0 || st.PartialSlabs() != 0 || st.ActiveObjects() != 0 {
		t.Errorf("after freeing all and Shrink: %d slabs, %d partial, %d active", st.Slabs(), st.PartialSlabs(), st.ActiveObjects())
	}
	if st.Counters[slab.AllocBulk] == 0 || st.Counters[slab.FreeSlab] == 0 {
		t.Errorf("counters %v", st.Counters)
	}
	if slab.AllocFastpath.String() != "alloc_fastpath" || slab.FreeBulk.String() != "free_bulk" || slab.Stat(-1).String() != "stat?" || slab.NumStats.String() != "stat?" {
		t.Error("Stat names")
	}
	found := false
	for _, ci := range e.a.Caches() {
		if ci.Name == "stats" {
			found = true
			if s := ci.Stats(); s.Name != "stats" || s.ObjectSize != 200 {
				t.Errorf("CacheInfo.Stats %+v", s)
			}
			if ci.Mergeable || ci.UniqueID != "stats" {
				t.Errorf("NoMerge cache info %+v", ci)
			}
		}
	}
	if !found {
		t.Error("Caches() lacks the cache")
	}
	if e.a.System() != e.sys {
		t.Error("System()")
	}
}

func TestZeroingContract(t *testing.T) {
	e := newBB(t, mem.Config{})
	c := mustCache(t, e.a, "zero", 72, &slab.CacheOptions{Flags: slab.NoMerge})
	dirty := func() {
		p, _ := c.Alloc()
		for i := range unsafe.Slice((*byte)(p), 72) {
			*(*byte)(unsafe.Add(p, i)) = 0xee
		}
		c.Free(p)
	}
	check := func(what string, p unsafe.Pointer, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range unsafe.Slice((*byte)(p), 72) {
			if b != 0 {
				t.Fatalf("%s: byte %d = %#x", what, i, b)
			}
		}
		c.Free(p)
	}
	dirty()
	p, err := c.Zalloc()
	check("Zalloc", p, err)
	for n := 0; n < 2; n++ {
		dirty()
		p, err = c.AllocNode(n, slab.Zero)
		check("AllocNode Zero", p, err)
	}
	dirty()
	p, err = e.a.KmallocNode(60, mem.NumaNoNode, slab.Zero)
	if err == nil {
		for i, b := range unsafe.Slice((*byte)(p), 60) {
			if b != 0 {
				t.Fatalf("KmallocNode Zero: byte %d", i)
			}
		}
		e.a.Kfree(p)
	}
	type rec struct{ A, B uint64 }
	ty, err := slab.NewTyped[rec](e.a, "recs", &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ty.New()
	r.A, r.B = 1, 2
	ty.Free(r)
	r, _ = ty.New()
	if *r != (rec{}) {
		t.Fatalf("Typed.New not zeroed: %+v", *r)
	}
	ty.Free(r)
	if _, err := c.AllocNode(0, slab.GFP(1<<20)); err == nil {
		t.Error("unknown gfp accepted")
	}
}
