package slab_test

// Allocator.Shrink gives memory back to the OS: free slabs go back to the
// page allocator, which reports its free memory at once.

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// rss returns the process's resident set size in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm:", err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * int64(os.Getpagesize())
}

func TestShrinkGivesMemoryBack(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 64 MiB")
	}
	e := newBB(t, mem.Config{Nodes: 1, BlockSize: 128 << 20, InitialPerNode: 128 << 20, MaxBlocks: 4,
		ReportingDelay: -1}) // the background reporter off: only Shrink reports
	c := mustCache(t, e.a, "churn", 64, &slab.CacheOptions{Flags: slab.NoMerge})
	const n = 1 << 20
	objs := make([]unsafe.Pointer, n)
	for i := range objs {
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		*(*uint64)(p) = uint64(i) // touch it
		objs[i] = p
	}
	for _, p := range objs[:n*3/4] { // the oldest 75 %
		c.Free(p)
	}
	before := rss(t)
	got, err := e.a.Shrink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after := rss(t)
	freed := int64(n*3/4) * 64
	t.Logf("reported %d MiB; RSS %d → %d MiB (%d MiB of objects freed)", got>>20, before>>20, after>>20, freed>>20)
	if got < freed/2 || before-after < freed/2 {
		t.Fatalf("Shrink gave back %d bytes, RSS fell by %d; %d bytes of objects were freed", got, before-after, freed)
	}
	for i, p := range objs[n*3/4:] {
		if *(*uint64)(p) != uint64(n*3/4+i) {
			t.Fatalf("live object %d changed", i)
		}
	}
	// Reused memory reads as it should: fresh objects are usable.
	for i := 0; i < 1000; i++ {
		p, err := c.Zalloc()
		if err != nil {
			t.Fatal(err)
		}
		if *(*uint64)(p) != 0 {
			t.Fatal("Zalloc of reused memory not zero")
		}
		c.Free(p)
	}
	c.FreeBulk(objs[n*3/4:])

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.a.Shrink(ctx); err != nil && !errors.Is(err, syscall.EINTR) {
		t.Fatalf("Shrink with a cancelled context: %v", err)
	}
	e.a.Close()
	if _, err := e.a.Shrink(context.Background()); !errors.Is(err, slab.ErrClosed) {
		t.Fatalf("Shrink after Close: %v", err)
	}
}
