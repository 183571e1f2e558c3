package bench

import (
	"flag"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
)

// This file holds the benchmark registries and the top-level Benchmark
// functions. Implementations register themselves from an init function in
// their own file (peers_test.go for the baselines, hotslab_test.go for
// hotslab), so adding a row never requires editing this file.
//
// Contract for every registered func(b *testing.B):
//
//   - It may do untimed setup first (warm-up, preallocation) and must then
//     call b.ResetTimer.
//   - It loops with a plain "for i := 0; i < b.N; i++" (or pb.Next under
//     RunParallel), never b.Loop: every row of a table uses the same loop
//     form, the one the C harness uses. (Under b.Loop the compiler keeps
//     every variable of the loop body in memory, which costs a row a few
//     loads and stores per iteration that the b.N rows do not pay.)
//   - It must touch every object it gets (write at least one byte) and keep
//     the pointer observable (for example by freeing it, or storing it in a
//     package-level sink), so the compiler cannot elide the work.
//   - It must leave nothing allocated when it returns (free everything).

// objSize is the object size every benchmark allocates.
const objSize = 64

// obj64 is the 64-byte object used by the Go-heap based peers.
type obj64 = [objSize]byte

// bulkN is the number of objects allocated (then freed) per iteration of a
// BenchmarkBulk64 row.
const bulkN = 64

// gcObjects is the number of live objects used by BenchmarkGC10M;
// gcObjectsShort is used under -short.
const (
	gcObjects      = 10_000_000
	gcObjectsShort = 1_000_000
)

// benchImpl is one row of a side-by-side benchmark.
type benchImpl struct {
	name string
	fn   func(b *testing.B)
}

// gcImpl is one row of BenchmarkGC10M.
//
// populate must make n live 64-byte objects exist (each a separate
// allocation, each written to at least once) and return a release function
// that frees them. The objects must stay live until release is called; for
// Go-heap objects the release closure is what keeps them reachable.
type gcImpl struct {
	name     string
	populate func(n int) (release func())
}

var (
	// pairImpls rows of BenchmarkPair64: one goroutine, b.N times
	// allocate one 64-byte object, write to it, free it.
	pairImpls []benchImpl

	// pairParallelImpls rows of BenchmarkPair64Parallel: the same pair,
	// inside b.RunParallel (ns/op is wall time / total pairs, as usual).
	pairParallelImpls []benchImpl

	// bulkImpls rows of BenchmarkBulk64: each of the b.N iterations must
	// allocate exactly bulkN objects (touching each), then free all bulkN.
	// The runner rewrites ns/op to be per object (elapsed/(b.N*bulkN)) and
	// adds ns/batch.
	bulkImpls []benchImpl

	// crossPImpls rows of BenchmarkCrossP64: objects are allocated by the
	// benchmark goroutine and freed by another goroutine. Use runCrossP
	// so every row pays the same hand-off cost.
	crossPImpls []benchImpl

	// gcImpls rows of BenchmarkGC10M.
	gcImpls []gcImpl
)

func registerPair(name string, fn func(b *testing.B)) {
	pairImpls = append(pairImpls, benchImpl{name, fn})
}

func registerPairParallel(name string, fn func(b *testing.B)) {
	pairParallelImpls = append(pairParallelImpls, benchImpl{name, fn})
}

func registerBulk(name string, fn func(b *testing.B)) {
	bulkImpls = append(bulkImpls, benchImpl{name, fn})
}

func registerCrossP(name string, fn func(b *testing.B)) {
	crossPImpls = append(crossPImpls, benchImpl{name, fn})
}

func registerGC(name string, populate func(n int) (release func())) {
	gcImpls = append(gcImpls, gcImpl{name, populate})
}

// gcFirst lists the BenchmarkGC10M rows that run before all others, in
// this order. An allocator may keep process-global state after release
// (off-heap arenas, metadata on the Go heap) that the GC keeps scanning,
// which would inflate every row measured after it; so the baseline and
// the pure Go-heap rows run first and other allocators afterwards.
var gcFirst = []string{"empty", "heap", "heap-array"}

// gcRunOrder returns gcImpls with the gcFirst rows first, the rest in
// registration order.
func gcRunOrder() []gcImpl {
	var first, rest []gcImpl
	for _, name := range gcFirst {
		for _, impl := range gcImpls {
			if impl.name == name {
				first = append(first, impl)
			}
		}
	}
	for _, impl := range gcImpls {
		if !slices.Contains(gcFirst, impl.name) {
			rest = append(rest, impl)
		}
	}
	return append(first, rest...)
}

func runAll(b *testing.B, impls []benchImpl) {
	if len(impls) == 0 {
		b.Skip("no implementations registered")
	}
	for _, impl := range impls {
		b.Run(impl.name, impl.fn)
	}
}

// BenchmarkPair64 measures one allocation immediately followed by its free
// (64-byte object) on a single goroutine. ns/op is per alloc+free pair.
func BenchmarkPair64(b *testing.B) { runAll(b, pairImpls) }

// BenchmarkPair64Parallel is BenchmarkPair64 under b.RunParallel
// (GOMAXPROCS goroutines); ns/op is wall time divided by total pairs.
func BenchmarkPair64Parallel(b *testing.B) { runAll(b, pairParallelImpls) }

// BenchmarkBulk64 measures allocating bulkN objects and then freeing all
// of them. ns/op is reported per object (one alloc + one free).
func BenchmarkBulk64(b *testing.B) {
	if len(bulkImpls) == 0 {
		b.Skip("no implementations registered")
	}
	for _, impl := range bulkImpls {
		b.Run(impl.name, func(b *testing.B) {
			impl.fn(b)
			b.StopTimer()
			ns := float64(b.Elapsed().Nanoseconds())
			b.ReportMetric(ns/float64(b.N), "ns/batch")
			b.ReportMetric(ns/float64(b.N*bulkN), "ns/op")
		})
	}
}

// BenchmarkCrossP64 measures allocation on one goroutine and free on
// another (remote free). ns/op is per object and includes the hand-off
// through a single-producer/single-consumer ring (see the "handoff" row,
// which moves preallocated objects without allocating or freeing).
func BenchmarkCrossP64(b *testing.B) { runAll(b, crossPImpls) }

// BenchmarkGC10M measures the duration of one forced runtime.GC() while
// gcObjects (10M; 1M under -short) 64-byte objects are live in each row's
// allocator ("empty" is the baseline with nothing extra live). Population
// happens once per row, untimed. Reported: ms/gc (also ns/op), plus
// heap-MB (runtime HeapAlloc) and rss-MB (resident set) after population.
// Rows run in gcRunOrder: empty, heap, heap-array, then the others.
//
// Each row runs in a fresh child process (this test binary re-executed
// with -test.bench selecting just that row), so state left on the Go heap
// by earlier benchmarks or rows (which every GC would scan again) cannot
// inflate the result. The child calibrates b.N itself; the parent
// reports the child's metrics (its own iteration count is meaningless).
func BenchmarkGC10M(b *testing.B) {
	if len(gcImpls) == 0 {
		b.Skip("no implementations registered")
	}
	if os.Getenv(gcChildEnv) == "" {
		for _, impl := range gcRunOrder() {
			b.Run(impl.name, func(b *testing.B) { runGCChild(b, impl.name) })
		}
		return
	}
	n := gcObjects
	if testing.Short() {
		n = gcObjectsShort
	}
	for _, impl := range gcRunOrder() {
		var release func()
		var heapMB, rssMB float64
		var heap0, rss0 uint64 // before populate
		b.Run(impl.name, func(b *testing.B) {
			// The closure is called several times (b.N = 1, then
			// scaled); populate only on the first call.
			if release == nil {
				heap0, rss0 = settledMemory()
				release = impl.populate(n)
				heap, rss := settledMemory()
				heapMB = float64(heap) / (1 << 20)
				rssMB = float64(rss) / (1 << 20)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				runtime.GC()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/gc")
			b.ReportMetric(heapMB, "heap-MB")
			b.ReportMetric(rssMB, "rss-MB")
		})
		if release == nil {
			continue // filtered out
		}
		release()
		// Everything should be gone now; state left behind skews the
		// rows (and -count repetitions) that follow, so say so.
		heap, rss := settledMemory()
		if heap > heap0+8<<20 || rss > rss0+64<<20 {
			b.Logf("%s: after release the Go heap is %.1f MB (was %.1f) and RSS %.1f MB (was %.1f): "+
				"later rows and -count repetitions include this residue",
				impl.name, float64(heap)/(1<<20), float64(heap0)/(1<<20),
				float64(rss)/(1<<20), float64(rss0)/(1<<20))
		}
	}
}

// gcChildEnv marks a child process started by BenchmarkGC10M.
const gcChildEnv = "HOTSLAB_BENCH_GC10M_CHILD"

// runGCChild runs row name of BenchmarkGC10M in a child process and
// reports its metrics as b's.
//
// The timer keeps running (it covers the whole child), so the framework
// sees b.N = 1 taking longer than -benchtime and does not rerun.
func runGCChild(b *testing.B, name string) {
	var args []string
	if f := flag.Lookup("test.benchtime"); f != nil {
		args = append(args, "-test.benchtime="+f.Value.String())
	}
	for _, m := range runBenchChild(b, "BenchmarkGC10M/"+name, gcChildEnv, args...) {
		b.ReportMetric(m.value, m.unit)
	}
}

// settledMemory collects garbage, returns free memory to the OS and
// reports the live Go heap (HeapAlloc) and the RSS, in bytes.
func settledMemory() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, uint64(max(rssBytes(), 0))
}
