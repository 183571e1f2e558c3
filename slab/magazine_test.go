// Magazines: refills, flushes, the free path's refusals, lifetimes.

package slab

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// Bad sizes and destroyed handles are refused, nothing opened.
func TestNewMagazineBadInput(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("mag-bad", 64, &CacheOptions{Flags: NoMerge})
	for _, size := range []int{-1, 1, 1<<16 + 1} {
		if m, err := c.NewMagazine(size); !errors.Is(err, syscall.EINVAL) || m != nil {
			t.Fatalf("NewMagazine(%d): %v, %v", size, m, err)
		}
	}
	if n := c.open.Load(); n != 0 {
		t.Fatalf("%d magazines counted after refusals", n)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewMagazine(8); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("NewMagazine on a destroyed handle: %v", err)
	}
	if _, err := c.PrefillSheaf(8); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("PrefillSheaf on a destroyed handle: %v", err)
	}
}

func TestMagazine(t *testing.T) {
	e := newEnv(t, memCfg())
	for _, size := range []int{64, 96, 2048} { // mask, reciprocal, multi-page slabs
		c := e.cache("mag-"+kmallocName(size), size, &CacheOptions{Flags: NoMerge})
		m, err := c.NewMagazine(16)
		if err != nil {
			t.Fatal(err)
		}
		if m.Cap() != 16 || m.Len() != 0 {
			t.Fatalf("new magazine: len %d cap %d", m.Len(), m.Cap())
		}
		seen := map[unsafe.Pointer]bool{}
		var objs []unsafe.Pointer
		for i := 0; i < 100; i++ {
			p := m.Alloc()
			if p == nil {
				t.Fatal(m.Err())
			}
			if seen[p] {
				t.Fatalf("size %d: %p handed out twice", size, p)
			}
			seen[p] = true
			objs = append(objs, p)
			if m.Len() > m.Cap() {
				t.Fatalf("len %d > cap", m.Len())
			}
		}
		for _, p := range objs {
			m.Free(p)
			if m.Len() > m.Cap() || m.Len() == 0 {
				t.Fatalf("size %d: len %d after a free", size, m.Len())
			}
		}
		if bad := e.invalid(); len(bad) != 0 {
			t.Fatalf("size %d: valid frees refused: %v", size, bad)
		}
		// The refusals of Cache.Free.
		p := m.Alloc()
		m.Free(p)
		m.Free(p) // on top of the magazine
		other, _ := e.a.Kmalloc(size, 0)
		m.Free(other) // another cache's object
		m.Free(unsafe.Add(p, 8))
		m.Free(unsafe.Pointer(new(int64)))
		m.Free(nil)
		bad := e.invalid()
		if len(bad) != 4 || !strings.HasPrefix(bad[0].Fault, "double free") ||
			!strings.Contains(bad[1].Fault, "belongs to") || bad[2].Fault != "not the start of an object" ||
			!strings.Contains(bad[3].Fault, "not in hotslab memory") {
			t.Fatalf("size %d: refusals %v", size, bad)
		}
		e.a.Kfree(other)
		// Freed to the slab and freed again through the magazine (q is p:
		// the magazine is LIFO).
		q := m.Alloc()
		r := m.Alloc()
		m.Flush()
		c.Shrink()
		c.Free(q) // alone in the P's sheaf, so last into its slab
		c.Shrink()
		m.Free(q)
		if bad := e.invalid(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
			t.Fatalf("size %d: free after the slab took it back: %v", size, bad)
		}
		m.Free(r)
		if err := c.Destroy(); !errors.Is(err, syscall.EBUSY) {
			t.Fatalf("Destroy with a magazine open: %v", err)
		}
		m.Close()
		if m.Alloc() != nil || m.Err() == nil {
			t.Fatal("Alloc from a closed magazine")
		}
		s, _ := c.Alloc()
		m.Free(s)
		if bad := e.invalid(); len(bad) != 1 || bad[0].Fault != "magazine closed" {
			t.Fatalf("Free into a closed magazine: %v", bad)
		}
		c.Free(s)
		m.Close()
		if bad := e.invalid(); len(bad) != 0 {
			t.Fatalf("size %d: %v", size, bad)
		}
		if err := c.Destroy(); err != nil {
			t.Fatalf("size %d: Destroy after Close: %v", size, err)
		}
	}
}

// Magazines on many goroutines, moving between Ps, under flushes of the
// cache, and GOMAXPROCS changes: nothing handed out twice, everything
// back at the end.
func TestMagazineConcurrent(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	e := newEnv(t, memCfg())
	c := e.cache("mag-conc", 64, &CacheOptions{Flags: NoMerge})
	var live sync.Map
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Shrink()
			runtime.GOMAXPROCS(1 + i%4)
		}
	}()
	iters := 20000
	if testing.Short() {
		iters = 4000
	}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := c.NewMagazine(32)
			if err != nil {
				t.Error(err)
				return
			}
			defer m.Close()
			var held []unsafe.Pointer
			for i := 0; i < iters; i++ {
				if i%3 != 2 {
					p := m.Alloc()
					if p == nil {
						t.Error(m.Err())
						return
					}
					if _, dup := live.LoadOrStore(p, true); dup {
						t.Errorf("%p handed out twice", p)
						return
					}
					held = append(held, p)
				} else if len(held) > 0 {
					p := held[len(held)-1]
					held = held[:len(held)-1]
					live.Delete(p)
					m.Free(p)
				}
				if i%500 == 0 {
					runtime.Gosched()
				}
			}
			for _, p := range held {
				live.Delete(p)
				m.Free(p)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if bad := e.invalid(); len(bad) != 0 {
		t.Fatalf("refused: %v", bad[0])
	}
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 {
		t.Fatalf("%d slabs, %d active after every magazine closed", st.Slabs(), st.ActiveObjects())
	}
}

// Allocator.Close empties open magazines: Alloc returns nil and Free
// refuses, instead of handing out or taking freed memory.
func TestMagazineAfterClose(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("mag-close", 64, &CacheOptions{Flags: NoMerge})
	m, err := c.NewMagazine(8)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Alloc()
	m.Free(m.Alloc())
	e.a.Close()
	if q := m.Alloc(); q != nil || m.Err() == nil {
		t.Fatalf("Alloc after Allocator.Close: %p, %v", q, m.Err())
	}
	m.Free(p)
	if bad := e.invalid(); len(bad) != 1 {
		t.Fatalf("Free after Allocator.Close: %v", bad)
	}
	m.Close()
	if _, err := c.NewMagazine(8); err == nil {
		t.Fatal("NewMagazine after Allocator.Close")
	}
}
