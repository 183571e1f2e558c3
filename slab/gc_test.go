package slab

import (
	"reflect"
	"runtime"
	"runtime/metrics"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// TestSlabHeaderPointerFree: struct slab lives in mem.Page's Owner words,
// which the collector never scans, so it must hold no pointer.
func TestSlabHeaderPointerFree(t *testing.T) {
	ht := reflect.TypeFor[slabHdr]()
	for i := range ht.NumField() {
		switch f := ht.Field(i); f.Type.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr, reflect.Bool:
		default:
			t.Errorf("slabHdr.%s is %v: only integers may live in struct page", f.Name, f.Type)
		}
	}
	if unsafe.Sizeof(slabHdr{}) > unsafe.Sizeof(mem.Page{}.Owner) {
		t.Errorf("slabHdr (%d bytes) does not fit in Page.Owner", unsafe.Sizeof(slabHdr{}))
	}
}

// TestMetadataInvisibleToGC allocates 256 MiB worth of 64-byte objects
// (4M objects, 64K slabs) and checks with the runtime's own metric that
// the collector's scannable heap grew by less than 256 KiB: no Go object
// per slab, none per page, none per object. One Go object per slab (the
// first design) added several MiB here.
func TestMetadataInvisibleToGC(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MiB")
	}
	for _, acct := range []bool{false, true} {
		name := "plain"
		if acct {
			name = "accounted"
		}
		t.Run(name, func(t *testing.T) { testMetadataInvisibleToGC(t, acct) })
	}
}

// testMetadataInvisibleToGC is TestMetadataInvisibleToGC without or with
// accounting: with it, every object charged to a group (its ObjCgroup id
// in its slab's vector, off the Go heap).
func testMetadataInvisibleToGC(t *testing.T, acct bool) {
	e := newEnv(t, mem.Config{Nodes: 1, BlockSize: 64 << 20, InitialPerNode: 320 << 20})
	flags := NoMerge
	if acct {
		flags |= Account
	}
	c := e.cache("gc-64", 64, &CacheOptions{Flags: flags})
	g, err := e.a.Memcg().Root().Create("gc")
	if err != nil {
		t.Fatal(err)
	}
	scannable := func() uint64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	const n = 4 << 20
	objs := make([]unsafe.Pointer, 0, 4096)
	before := scannable()
	var addrs []uintptr = make([]uintptr, 0, n) // noscan: addresses only
	for range n / cap(objs) {
		objs = objs[:cap(objs)]
		if acct {
			for i := range objs {
				if objs[i], err = c.In(g).Alloc(); err != nil {
					t.Fatal(err)
				}
			}
		} else if err := c.AllocBulk(objs); err != nil {
			t.Fatal(err)
		}
		for _, p := range objs {
			addrs = append(addrs, uintptr(p))
		}
	}
	clear(objs)
	after := scannable()
	grew := int64(after) - int64(before)
	t.Logf("scannable heap: %d -> %d bytes", before, after)
	if grew > 256<<10 {
		t.Errorf("scannable heap grew by %d KiB for %d objects in %d slabs", grew>>10, n, c.Stats().Nodes[0].Slabs)
	}
	if acct {
		e.a.Memcg().Drain()
		if want := int64(n * (64 + 4)); g.Current() != want {
			t.Errorf("charged %d, want %d", g.Current(), want)
		}
	}
	for _, a := range addrs {
		c.Free(ptr(a))
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if bad := e.invalid(); len(bad) != 0 {
		t.Fatal(bad)
	}
	e.a.Memcg().Drain()
	if g.Current() != 0 {
		t.Errorf("charged %d after freeing everything", g.Current())
	}
}
