//go:build linux

// Tests that offlining a block gives its memory back to the OS (RSS);
// report_test.go measures free page reporting.

package mem

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rss returns the process's resident set size in bytes (/proc/self/statm).
func rss(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm:", err)
	}
	f := strings.Fields(string(b))
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

// TestOfflineReturnsMemory touches every page of a 64 MiB block, offlines
// it and checks that most of it left the process's RSS.
func TestOfflineReturnsMemory(t *testing.T) {
	for _, bk := range []Backing{BackingAnon, BackingMemfd} {
		t.Run(bk.String(), func(t *testing.T) {
			const bs = 64 << 20
			// No background reporting: it would give the freed
			// memory back before the offline does.
			s := newTest(t, Config{Nodes: 1, BlockSize: bs, InitialPerNode: -1, MaxBlocks: 4, Backing: bk,
				ReportingDelay: -1})
			ids, err := s.AddMemory(0, bs)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Online(ctx, ids[0], OnlineMovable); err != nil {
				t.Fatal(err)
			}
			// Touch every page through the allocator.
			var pages []uintptr
			for {
				a, err := s.AllocPages(0, MaxOrder, GFPMovable)
				if err != nil {
					break
				}
				b := s.bytes(a, PageSize<<MaxOrder)
				for i := 0; i < len(b); i += PageSize {
					b[i] = 1
				}
				pages = append(pages, a)
			}
			if len(pages) != bs/(PageSize<<MaxOrder) {
				t.Fatalf("got %d chunks", len(pages))
			}
			for _, a := range pages {
				s.FreePages(a, MaxOrder)
			}
			before := rss(t)
			if err := s.Offline(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			after := rss(t)
			t.Logf("RSS before offline %d MiB, after %d MiB (block %d MiB)", before>>20, after>>20, bs>>20)
			if before-after < bs*3/4 {
				t.Errorf("RSS dropped by %d bytes, want most of %d", before-after, bs)
			}
		})
	}
}
