package slab_test

// A slab whose order the page allocator cannot supply takes the fallback
// geometry (the smallest order holding one object), as the kernel's
// allocate_slab() falls back to oo_min.

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

func TestOrderFallback(t *testing.T) {
	e := newBB(t, mem.Config{Nodes: 1, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 8, ReportingDelay: -1})
	// Fragment the node: every order-4 chunk taken, every other one freed,
	// so no order-5 chunk is free though half the memory is.
	var chunks []uintptr
	for {
		addr, err := e.sys.AllocPages(0, 4, 0)
		if err != nil {
			break
		}
		chunks = append(chunks, addr)
	}
	for i := 0; i < len(chunks); i += 2 {
		if err := e.sys.FreePages(chunks[i], 4); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{2560, 6144} { // kmalloc classes of order-5 slabs
		var objs []unsafe.Pointer
		for i := 0; i < 40; i++ {
			p, err := e.a.Kmalloc(size, 0)
			if err != nil {
				t.Fatalf("Kmalloc(%d) #%d with half the memory free: %v", size, i, err)
			}
			*(*byte)(unsafe.Add(p, size-1)) = 1
			objs = append(objs, p)
		}
		// Past the object in a fallback slab (one object per slab here):
		// not an object start, whatever the cache's own geometry says.
		e.a.Kfree(unsafe.Add(objs[0], size))
		if bad := e.refused(); len(bad) != 1 || !strings.Contains(bad[0].Fault, "not the start of an object") &&
			!strings.Contains(bad[0].Fault, "not a slab page") && !strings.Contains(bad[0].Fault, "another cache") {
			t.Fatalf("size %d: free past the object of a fallback slab: %v", size, bad)
		}
		for _, p := range objs {
			e.a.Kfree(p)
		}
		if bad := e.refused(); len(bad) != 0 {
			t.Fatalf("size %d: %v", size, bad)
		}
	}
	var fallbacks uint64
	for _, c := range e.a.KmallocCaches() {
		st := c.Stats()
		fallbacks += st.Counters[slab.OrderFallback]
	}
	if fallbacks == 0 {
		t.Fatal("no slab took the fallback order: the test did not fragment the node")
	}
	if _, err := e.a.Shrink(t.Context()); err != nil && !errors.Is(err, syscall.EINTR) {
		t.Fatal(err)
	}
	for _, c := range e.a.KmallocCaches() {
		if st := c.Stats(); st.Slabs() != 0 || st.ActiveObjects() != 0 || st.Objects() != 0 {
			t.Errorf("%s: %d slabs, %d objects, %d active after freeing all and Shrink", c.Name(), st.Slabs(), st.Objects(), st.ActiveObjects())
		}
	}
	for i := 1; i < len(chunks); i += 2 {
		if err := e.sys.FreePages(chunks[i], 4); err != nil {
			t.Fatal(err)
		}
	}
}
