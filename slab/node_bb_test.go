package slab_test

import (
	"errors"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// Black-box tests of node-specific allocation (issue 9, item 2).

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
