// kmalloc and typed caches.

package slab

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

func TestKmalloc(t *testing.T) {
	e := newEnv(t, memCfg())
	want := map[int]int{1: 8, 8: 8, 9: 16, 17: 24, 33: 40, 49: 56, 65: 80, 96: 96, 97: 112, 129: 160, 193: 224, 600: 640, 1000: 1024, 3000: 3072, 4097: 5120, 8192: 8192}
	for size, class := range want {
		p, err := e.a.Kmalloc(size, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.a.Ksize(p); got != class {
			t.Fatalf("kmalloc(%d): ksize %d, want %d", size, got, class)
		}
		e.a.Kfree(p)
	}
	names := []string{}
	for _, c := range e.a.KmallocCaches() {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, " "); got != "kmalloc-8 kmalloc-16 kmalloc-24 kmalloc-32 kmalloc-40 kmalloc-48 kmalloc-56 kmalloc-64 kmalloc-80 kmalloc-96 kmalloc-112 kmalloc-128 "+
		"kmalloc-160 kmalloc-192 kmalloc-224 kmalloc-256 kmalloc-320 kmalloc-384 kmalloc-448 kmalloc-512 "+
		"kmalloc-640 kmalloc-768 kmalloc-896 kmalloc-1k kmalloc-1280 kmalloc-1536 kmalloc-1792 kmalloc-2k "+
		"kmalloc-2560 kmalloc-3k kmalloc-3584 kmalloc-4k kmalloc-5k kmalloc-6k kmalloc-7k kmalloc-8k" {
		t.Fatalf("kmalloc caches: %s", got)
	}
	// Every size's class: the smallest that holds it, wasting at most 7
	// bytes up to 32 and less than a fifth of the class above.
	for size := 1; size <= KmallocMaxCacheSize; size++ {
		c := e.a.kmallocCache(size)
		class := c.ObjectSize()
		smallest := 0
		for _, sz := range kmallocSizes {
			if sz >= size {
				smallest = sz
				break
			}
		}
		if class != smallest {
			t.Fatalf("kmalloc(%d) in %s, not kmalloc-%d", size, c.Name(), smallest)
		}
		if waste := class - size; size <= 32 && waste > 7 || size > 32 && waste*5 >= class {
			t.Fatalf("kmalloc(%d) wastes %d bytes of %s", size, waste, c.Name())
		}
	}
	// Large: straight from the page allocator.
	big, err := e.a.Kmalloc(10000, Zero)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.a.Ksize(big); got != 16384 {
		t.Fatalf("large ksize %d", got)
	}
	check(t, big, 10000, 0)
	e.a.Kfree(unsafe.Add(big, 8))
	if bad := e.invalid(); len(bad) != 1 {
		t.Fatalf("kfree inside a large allocation: %+v", bad)
	}
	e.a.Kfree(big)
	// krealloc keeps the contents.
	p, _ := e.a.Kmalloc(34, 0)
	fill(p, 34, 0x5a)
	q, err := e.a.Krealloc(p, 40, 0)
	if err != nil || q != p {
		t.Fatalf("krealloc within the class moved: %v", err)
	}
	q, err = e.a.Krealloc(q, 3000, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, q, 34, 0x5a)
	e.a.Kfree(q)
	for _, bad := range []int{0, -1, mem.PageSize<<mem.MaxOrder + 1} {
		if _, err := e.a.Kmalloc(bad, 0); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("kmalloc(%d): %v", bad, err)
		}
	}
	if _, err := e.a.KmallocNode(64, 7, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad node: %v", err)
	}
	e.a.Kfree(nil)
	if len(e.invalid()) != 0 {
		t.Fatal("spurious invalid free")
	}
}

func TestTyped(t *testing.T) {
	e := newEnv(t, memCfg())
	tc, err := NewTyped[point](e.a, "points", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tc.New()
	if err != nil {
		t.Fatal(err)
	}
	if *v != (point{}) {
		t.Fatal("New not zeroed")
	}
	v.X, v.Tag[3] = 42, 'x'
	tc.Free(v)
	type withPtr struct {
		A int
		B *int
	}
	type withSlice struct{ S [2]struct{ B []byte } }
	for name, f := range map[string]func() error{
		"withPtr":   func() error { _, err := NewTyped[withPtr](e.a, "p1", nil); return err },
		"withSlice": func() error { _, err := NewTyped[withSlice](e.a, "p2", nil); return err },
		"string":    func() error { _, err := NewTyped[string](e.a, "p3", nil); return err },
		"iface":     func() error { _, err := NewTyped[any](e.a, "p4", nil); return err },
		"map":       func() error { _, err := NewTyped[map[int]int](e.a, "p5", nil); return err },
	} {
		err := f()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Go pointer") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, ok := e.a.Lookup("p1"); ok {
		t.Fatal("refused typed cache was created")
	}
	b, err := tc.Cache().AllocBytes()
	if err != nil || len(b) != int(unsafe.Sizeof(point{})) {
		t.Fatalf("bytes view: %d %v", len(b), err)
	}
	tc.Cache().FreeBytes(b)
}
