//go:build linux

// Benchmarks of the page allocator and of online/offline.

package mem

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkPageAllocFree measures an order-0 AllocPages+FreePages pair on
// the per-P lists (one pin each, no lock).
func BenchmarkPageAllocFree(b *testing.B) {
	s := newTest(b, Config{BlockSize: 4 << 20})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, err := s.AllocPages(NumaNoNode, 0, 0)
			if err != nil {
				b.Error(err)
				return
			}
			s.FreePages(a, 0)
		}
	})
}

// BenchmarkPageAllocFreeSerial is the same pair from one goroutine.
func BenchmarkPageAllocFreeSerial(b *testing.B) {
	s := newTest(b, Config{BlockSize: 4 << 20})
	for b.Loop() {
		a, _ := s.AllocPages(0, 0, 0)
		s.FreePages(a, 0)
	}
}

// BenchmarkPageAllocFreeOrder3 measures a buddy (zone-locked) pair.
func BenchmarkPageAllocFreeOrder3(b *testing.B) {
	s := newTest(b, Config{BlockSize: 4 << 20})
	for b.Loop() {
		a, _ := s.AllocPages(0, 3, 0)
		s.FreePages(a, 3)
	}
}

// BenchmarkOnlineOffline128M onlines and offlines an empty 128 MiB block;
// online-ns and offline-ns report the two halves separately.
func BenchmarkOnlineOffline128M(b *testing.B) {
	s := newTest(b, Config{Nodes: 1, BlockSize: 128 << 20, InitialPerNode: 128 << 20, MaxBlocks: 4})
	ids, err := s.AddMemory(0, 128<<20)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var on, off time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := s.Online(ctx, ids[0], OnlineMovable); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Offline(ctx, ids[0]); err != nil {
			b.Fatal(err)
		}
		off += time.Since(t1)
		on += t1.Sub(t0)
	}
	b.ReportMetric(float64(on.Nanoseconds())/float64(b.N), "online-ns/op")
	b.ReportMetric(float64(off.Nanoseconds())/float64(b.N), "offline-ns/op")
}

// BenchmarkOfflineRSS prints the RSS before and after offlining a touched
// 128 MiB block.
func BenchmarkOfflineRSS(b *testing.B) {
	for b.Loop() {
		s, err := New(Config{Nodes: 1, BlockSize: 128 << 20, InitialPerNode: -1, MaxBlocks: 2})
		if err != nil {
			b.Fatal(err)
		}
		ids, _ := s.AddMemory(0, 128<<20)
		ctx := context.Background()
		s.Online(ctx, ids[0], OnlineMovable)
		clear(s.bytes(s.Base(), 128<<20))
		before := rss(b)
		s.Offline(ctx, ids[0])
		after := rss(b)
		s.Close()
		b.ReportMetric(float64(before)/(1<<20), "rss-before-MiB")
		b.ReportMetric(float64(after)/(1<<20), "rss-after-MiB")
	}
}

// BenchmarkGCWithSystem times a full Go GC cycle while a System with
// 2 nodes × 1 GiB (BlockSize 128 MiB: 512K Pages) is live. The Pages are
// off the Go heap and hold no pointer, so this should cost what a GC
// without the System costs: it measures what struct page imposes on the
// rest of the program.
func BenchmarkGCWithSystem(b *testing.B) {
	s := newTest(b, Config{Nodes: 2, BlockSize: 128 << 20, InitialPerNode: 1 << 30})
	runtime.GC()
	for b.Loop() {
		runtime.GC()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/gc")
	runtime.KeepAlive(s)
}
