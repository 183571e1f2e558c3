package slab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// owned is an object a worker holds: its cache and the pattern written
// into it.
type owned struct {
	c   *Cache
	p   unsafe.Pointer
	pat byte
}

// TestStress runs many goroutines allocating and freeing across Ps and
// nodes (a share of the frees on another goroutine than the alloc) while
// blocks go offline and online and caches are created, merged, shrunk and
// destroyed. Every object carries a pattern checked on free; a registry
// catches any object handed out twice; at the end every counter balances
// and shrink returns every slab page.
func TestStress(t *testing.T) {
	e := newEnv(t, mem.Config{Nodes: 2, BlockSize: 1 << 20, InitialPerNode: 4 << 20, MaxBlocks: 256})
	dur := 2 * time.Second
	if testing.Short() {
		dur = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	sizes := []int{8, 24, 64, 96, 200, 512, 1500}
	var caches []*Cache
	for i, sz := range sizes {
		flags := Flags(0)
		if i%2 == 0 {
			flags = NoMerge
		}
		caches = append(caches, e.cache(fmt.Sprintf("stress-%d", sz), sz, &CacheOptions{Flags: flags}))
	}
	var live sync.Map // address -> cache name: catches double hand-out
	handout := func(o owned) {
		if prev, dup := live.LoadOrStore(uintptr(o.p), o.c.Name()); dup {
			t.Errorf("object %p handed out twice (%v and %s)", o.p, prev, o.c.Name())
		}
		fill(o.p, o.c.ObjectSize(), o.pat)
	}
	giveback := func(o owned) {
		b := unsafe.Slice((*byte)(o.p), o.c.ObjectSize())
		for i := range b {
			if b[i] != o.pat {
				t.Errorf("object %p of %s corrupted at %d: %#x != %#x", o.p, o.c.Name(), i, b[i], o.pat)
				break
			}
		}
		live.Delete(uintptr(o.p))
		o.c.Free(o.p)
	}
	var allocs, frees, enomem atomic.Int64
	cross := make(chan owned, 256)
	var wg sync.WaitGroup
	workers := 6
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []owned
			for ctx.Err() == nil {
				c := caches[r.IntN(len(caches))]
				var p unsafe.Pointer
				var err error
				switch r.IntN(4) {
				case 0:
					p, err = c.AllocNode(r.IntN(2), 0)
				default:
					p, err = c.Alloc()
				}
				if err != nil {
					if errors.Is(err, syscall.ENOMEM) {
						enomem.Add(1)
						runtime.Gosched()
						continue
					}
					t.Error(err)
					return
				}
				allocs.Add(1)
				o := owned{c, p, byte(r.IntN(255) + 1)}
				handout(o)
				if r.IntN(8) == 0 {
					select {
					case cross <- o: // freed by another goroutine
						continue
					default:
					}
				}
				mine = append(mine, o)
				if len(mine) > 200 || r.IntN(3) == 0 {
					for _, o := range mine[:len(mine)/2] {
						giveback(o)
						frees.Add(1)
					}
					mine = append(mine[:0], mine[len(mine)/2:]...)
				}
				select {
				case o := <-cross:
					giveback(o)
					frees.Add(1)
				default:
				}
			}
			for _, o := range mine {
				giveback(o)
				frees.Add(1)
			}
		}(w)
	}
	// Cache churn: create, merge, use, shrink, destroy.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			c, err := e.a.NewCache(fmt.Sprintf("churn-%d", i), 40+i%30, nil)
			if err != nil {
				t.Error(err)
				return
			}
			var objs []unsafe.Pointer
			for j := 0; j < 50; j++ {
				if p, err := c.Alloc(); err == nil {
					objs = append(objs, p)
				}
			}
			if err := c.Destroy(); err == nil && !c.Merged() {
				// Alias destroy succeeds with objects (shared cache);
				// a sole cache must refuse.
				if len(objs) > 0 && c.c.refcount == 0 {
					t.Errorf("destroy of %s with %d objects succeeded", c.Name(), len(objs))
				}
			}
			h := c
			if c.dead.Load() { // alias removed: free through a live handle
				h = nil
				for _, k := range e.a.KmallocCaches() {
					if k.c == c.c {
						h = k
					}
				}
			}
			for _, p := range objs {
				if h != nil {
					h.Free(p)
				}
			}
			if !c.dead.Load() {
				if err := c.Destroy(); err != nil {
					t.Error(err)
				}
			}
			caches[i%len(caches)].Shrink()
		}
	}()
	// Hotplug churn: offline/online blocks of both nodes.
	wg.Add(1)
	var offOK, offBusy atomic.Int64
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(99, 1))
		for ctx.Err() == nil {
			blocks := e.sys.Blocks()
			b := blocks[r.IntN(len(blocks))]
			if b.State != mem.BlockOnline {
				continue
			}
			err := e.sys.Offline(context.Background(), b.Index)
			switch {
			case err == nil:
				offOK.Add(1)
				time.Sleep(time.Millisecond)
				if err := e.sys.Online(context.Background(), b.Index, mem.OnlineDefault); err != nil {
					t.Error(err)
					return
				}
			case errors.Is(err, syscall.EBUSY):
				offBusy.Add(1)
			default:
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	for {
		select {
		case o := <-cross:
			giveback(o)
			frees.Add(1)
			continue
		default:
		}
		break
	}
	if allocs.Load() != frees.Load() {
		t.Fatalf("allocs %d != frees %d", allocs.Load(), frees.Load())
	}
	e.shrinkAll()
	for _, c := range caches {
		st := c.Stats()
		if st.Slabs() != 0 || st.ActiveObjects() != 0 {
			t.Errorf("%s: %d slabs, %d active after freeing everything", c.Name(), st.Slabs(), st.ActiveObjects())
		}
		a, f := st.Counters[AllocFastpath]+st.Counters[AllocSlowpath], st.Counters[FreeFastpath]+st.Counters[FreeSlowpath]+st.Counters[FreeRemote]
		if a == 0 || f == 0 {
			t.Errorf("%s: counters alloc %d free %d", c.Name(), a, f)
		}
		if st.Counters[AllocSlab] != st.Counters[FreeSlab] {
			t.Errorf("%s: freed %d slabs of %d allocated", c.Name(), st.Counters[FreeSlab], st.Counters[AllocSlab])
		}
	}
	if len(e.invalid()) != 0 {
		t.Fatal("invalid frees reported")
	}
	t.Logf("%d allocs, %d ENOMEM, offline ok %d busy %d", allocs.Load(), enomem.Load(), offOK.Load(), offBusy.Load())
}

// Objects cached by Ps that no longer exist (GOMAXPROCS lowered) are
// drained by shrink: none lost.
func TestGOMAXPROCSLowered(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("procs", 64, &CacheOptions{Flags: NoMerge})
	old := runtime.GOMAXPROCS(len(c.c.pcpu))
	defer runtime.GOMAXPROCS(old)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var objs []unsafe.Pointer
			for i := 0; i < 300; i++ {
				p, err := c.Alloc()
				if err != nil {
					t.Error(err)
					return
				}
				objs = append(objs, p)
				runtime.Gosched()
			}
			for _, p := range objs {
				c.Free(p)
			}
		}()
	}
	wg.Wait()
	cached := 0
	for p := range c.c.pcpu {
		if pc := &c.c.pcpu[p]; pc.main != nil {
			cached += pc.n
		}
	}
	if cached == 0 {
		t.Fatal("no objects cached in sheaves")
	}
	runtime.GOMAXPROCS(1)
	c.Shrink()
	st := c.Stats()
	if st.Slabs() != 0 || st.ActiveObjects() != 0 {
		t.Fatalf("%d slabs %d active after shrink with fewer Ps", st.Slabs(), st.ActiveObjects())
	}
}

// Ps beyond the per-P arrays (GOMAXPROCS raised after the cache was
// created) allocate and free through the slabs directly: nothing lost.
func TestGOMAXPROCSRaised(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("many-procs", 64, &CacheOptions{Flags: NoMerge})
	old := runtime.GOMAXPROCS(len(c.c.pcpu) + 6)
	defer runtime.GOMAXPROCS(old)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var objs []unsafe.Pointer
			for i := 0; i < 2000; i++ {
				p, err := c.Alloc()
				if err != nil {
					t.Error(err)
					return
				}
				fill(p, 64, byte(g))
				objs = append(objs, p)
				if i%3 == 0 {
					runtime.Gosched()
				}
			}
			for _, p := range objs {
				check(t, p, 64, byte(g))
				c.Free(p)
			}
		}(g)
	}
	wg.Wait()
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 || st.ActiveObjects() != 0 {
		t.Fatalf("%d slabs %d active", st.Slabs(), st.ActiveObjects())
	}
}
