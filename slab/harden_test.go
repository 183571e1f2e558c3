package slab

import (
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// newHardened is newEnv with the hardening options.
func newHardened(t testing.TB, o Options) *env {
	t.Helper()
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 64})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sys: sys}
	o.OnInvalidFree = func(f *InvalidFree) {
		e.mu.Lock()
		e.bad = append(e.bad, f)
		e.mu.Unlock()
	}
	if e.a, err = New(sys, &o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.a.Close()
		sys.Close()
	})
	return e
}

func dirty(p unsafe.Pointer, n int) {
	b := unsafe.Slice((*byte)(p), n)
	for i := range b {
		b[i] = 0xa5
	}
}

func isZero(p unsafe.Pointer, n int) bool {
	for _, x := range unsafe.Slice((*byte)(p), n) {
		if x != 0 {
			return false
		}
	}
	return true
}

// InitOnAlloc: every allocation path hands out zeroed objects, however
// dirty their last user left them; a constructor cache keeps its state.
func TestInitOnAlloc(t *testing.T) {
	e := newHardened(t, Options{InitOnAlloc: true})
	c := e.cache("ioa", 100, &CacheOptions{Flags: NoMerge | Account})
	g, _ := e.a.Memcg().Root().Create("g")
	m, err := c.NewMagazine(0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sh, err := c.PrefillSheaf(8)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]func() unsafe.Pointer{
		"Alloc":     func() unsafe.Pointer { p, _ := c.Alloc(); return p },
		"AllocNode": func() unsafe.Pointer { p, _ := c.AllocNode(0, ThisNode); return p },
		"AllocBulk": func() unsafe.Pointer {
			objs := make([]unsafe.Pointer, 3)
			if c.AllocBulk(objs) != nil {
				return nil
			}
			c.Free(objs[1])
			c.Free(objs[2])
			return objs[0]
		},
		"Group":    func() unsafe.Pointer { p, _ := c.In(g).Alloc(); return p },
		"Magazine": m.Alloc,
		"Sheaf":    sh.Alloc,
	}
	for round := 0; round < 3; round++ {
		for name, alloc := range paths {
			p := alloc()
			if p == nil {
				t.Fatalf("%s: nil", name)
			}
			if !isZero(p, 100) {
				t.Fatalf("round %d, %s: an object with its last user's data", round, name)
			}
			dirty(p, 100)
			switch name {
			case "Magazine":
				m.Free(p)
			case "Sheaf":
				sh.Free(p)
			default:
				c.Free(p)
			}
		}
	}
	sh.Return()
	ctor := e.cache("ioa-ctor", 64, &CacheOptions{Ctor: func(p unsafe.Pointer) { *(*uint64)(p) = 42 }})
	p, _ := ctor.Alloc()
	if *(*uint64)(p) != 42 {
		t.Error("InitOnAlloc cleared a constructed object")
	}
	ctor.Free(p)
	if bad := e.invalid(); len(bad) != 0 {
		t.Fatal(bad)
	}
}

// InitOnFree: a freed object's memory is zero at once, on every free path.
func TestInitOnFree(t *testing.T) {
	e := newHardened(t, Options{InitOnFree: true})
	c := e.cache("iof", 128, &CacheOptions{Flags: NoMerge})
	for _, free := range []func(unsafe.Pointer){
		c.Free,
		func(p unsafe.Pointer) { c.FreeBulk([]unsafe.Pointer{p}) },
	} {
		p, _ := c.Alloc()
		dirty(p, 128)
		free(p)
		if !isZero(p, 128) {
			t.Fatal("a freed object kept its data")
		}
	}
}

// RandomOrder: a new slab hands its objects out in shuffled order; the
// cache stays valid.
func TestRandomOrder(t *testing.T) {
	e := newHardened(t, Options{RandomOrder: true})
	c := e.cache("rnd", 64, &CacheOptions{Flags: NoMerge})
	objs := make([]unsafe.Pointer, 64)
	for i := range objs {
		objs[i], _ = c.AllocNode(0, ThisNode)
	}
	ascending := 0
	seen := map[unsafe.Pointer]bool{}
	for i, p := range objs {
		if seen[p] {
			t.Fatal("an object handed out twice")
		}
		seen[p] = true
		if i > 0 && uintptr(p) == uintptr(objs[i-1])+64 {
			ascending++
		}
	}
	if ascending > 40 {
		t.Errorf("%d of 63 neighbours in address order: not shuffled", ascending)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range objs {
		c.Free(p)
	}
}

// BenchmarkHardening: the 64-byte pair under each hardening option.
func BenchmarkHardening(b *testing.B) {
	for _, v := range []struct {
		name string
		o    Options
	}{{"default", Options{}}, {"init_on_alloc", Options{InitOnAlloc: true}},
		{"init_on_free", Options{InitOnFree: true}}, {"random_order", Options{RandomOrder: true}},
		{"debug_FZP", Options{Debug: "FZP,h64"}}, {"debug_FZPU", Options{Debug: "FZPU,h64"}}} {
		b.Run(v.name, func(b *testing.B) {
			e := newHardened(b, v.o)
			c := e.cache("h64", 64, &CacheOptions{Flags: NoMerge})
			p, _ := c.Alloc()
			c.Free(p)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, _ := c.Alloc()
				*(*byte)(p) = byte(i)
				c.Free(p)
			}
		})
	}
}

// BenchmarkHardeningBulk: 64 objects allocated, written and freed, each
// iteration, with and without the shuffled order (what it costs an
// allocation pattern that walks fresh slabs: the refill order).
func BenchmarkHardeningBulk(b *testing.B) {
	for _, v := range []struct {
		name string
		o    Options
	}{{"default", Options{}}, {"random_order", Options{RandomOrder: true}}} {
		b.Run(v.name, func(b *testing.B) {
			e := newHardened(b, v.o)
			c := e.cache("hb64", 64, &CacheOptions{Flags: NoMerge})
			objs := make([]unsafe.Pointer, 4096)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range objs {
					objs[j], _ = c.Alloc()
					*(*byte)(objs[j]) = byte(j)
				}
				for _, p := range objs {
					c.Free(p)
				}
				if i%16 == 0 {
					c.Shrink() // fresh slabs again
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4096, "ns/obj")
		})
	}
}

// InitOnAlloc zeroes a Magazine's object as it is handed out: a write
// after its free does not come back out.
func TestInitOnAllocMagazineUseAfterFree(t *testing.T) {
	e := newHardened(t, Options{InitOnAlloc: true})
	c := e.cache("ioam", 64, &CacheOptions{Flags: NoMerge})
	m, err := c.NewMagazine(0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := 0; i < 300; i++ {
		p := m.Alloc()
		if !isZero(p, 64) {
			t.Fatalf("round %d: a dirty object", i)
		}
		m.Free(p)
		dirty(p, 64) // a write after free
	}
	if m.Len() == 0 {
		t.Error("the magazine kept nothing")
	}
	m.Flush()
	if m.Len() != 0 {
		t.Errorf("Len %d after Flush", m.Len())
	}
}
