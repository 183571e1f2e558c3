// Package bench holds the side-by-side benchmarks that compare hotslab with
// its peers. All of it lives in _test.go files; this file only documents it.
//
// # Benchmarks
//
// Every benchmark uses 64-byte objects and reports ns/op per object (one
// allocation plus one free), so rows of one benchmark, and the C harness
// below, are directly comparable.
//
//	BenchmarkPair64/<impl>          one goroutine: allocate, write a byte, free; b.N times
//	BenchmarkPair64Parallel/<impl>  the same pair under b.RunParallel (GOMAXPROCS
//	                                goroutines; ns/op = wall time / total pairs)
//	BenchmarkBulk64/<impl>          allocate 64 objects, then free all 64; ns/op is
//	                                per object, ns/batch per 64
//	BenchmarkCrossP64/<impl>        allocate on the benchmark goroutine, free on a
//	                                second goroutine (remote free), objects passed
//	                                through an SPSC ring in groups of 16; the
//	                                "handoff" row is the ring alone
//	BenchmarkGC10M/<impl>           duration of one runtime.GC() while 10M 64-byte
//	                                objects (1M with -short) are live in <impl>;
//	                                reports ms/gc, heap-MB (HeapAlloc) and rss-MB;
//	                                each row runs in a fresh child process (the
//	                                iteration column shows 1: the parent's count)
//	BenchmarkCMalloc/<alloc>/<b>    the C harness (below) run as sub-benchmarks
//
// Rows ("impls"):
//
//	hotslab, hotslab-sheaf  hotslab itself (registered from hotslab_test.go)
//	syncpool                sync.Pool of *[64]byte, warmed before timing
//	heap                    new([64]byte) stored in a package-level sink so it
//	                        escapes; "free" drops the reference and the GC
//	                        reclaims it (its cost is part of the steady state)
//	mutexlist               sync.Mutex-protected LIFO free list of preallocated
//	                        objects (bulk rows take the lock once per batch)
//	heap-array              (GC10M only) the same bytes as one pointer-free
//	                        []([64]byte): a lower bound for off-heap storage
//	empty                   (GC10M only) nothing extra live
//
// # Adding rows
//
// The top-level benchmarks iterate over package-level registries
// (registry_test.go): pairImpls, pairParallelImpls, bulkImpls, crossPImpls
// and gcImpls. A file registers its rows from init, as peers_test.go does:
//
//	func init() {
//		registerPair("hotslab", func(b *testing.B) { ... })
//		registerGC("hotslab", func(n int) (release func()) { ... })
//	}
//
// See registry_test.go for the contract of each registry (touch every
// object, free everything, one batch of bulkN objects per b.N iteration in
// BenchmarkBulk64, use runCrossP in BenchmarkCrossP64). rssBytes and
// peakRSSBytes (rss_test.go) return the current and peak resident set size.
//
// # Running
//
//	go test -run '^$' -bench . -benchtime=1s -count=5 ./bench/ | tee new.txt
//	go test -run '^$' -bench 'Pair64$' -count=10 ./bench/
//	go test -run '^$' -bench GC10M -benchtime=10x ./bench/
//	go test -short -run '^$' -bench . ./bench/   # GC10M with 1M objects, no C
//
// Compare runs with golang.org/x/perf/cmd/benchstat. BenchmarkGC10M needs
// about 1.5 GB of memory for the heap row. Results are noisy on small or
// shared machines: use -count and report medians.
//
// # C harness
//
// c/malloc_bench.c times malloc/free of 64 bytes in C (pair64,
// pair64-parallel, bulk64, cross64, handoff: the same shapes as the Go
// benchmarks), -O2, clock_gettime(CLOCK_MONOTONIC), median of -r runs after
// a warm-up. Each binary first proves which malloc it uses (glibc:
// mallinfo2 moves; jemalloc: mallctl "thread.allocated" moves; mimalloc:
// mi_is_in_heap_region on a malloc() pointer) and prints its version.
//
//	bench/c/run.sh                     # build for glibc, jemalloc, mimalloc and run
//	bench/c/run.sh -n 20000000 -r 5 -t 2
//	NO_INSTALL=1 bench/c/run.sh        # do not apt-get install missing libraries
//
// run.sh installs libjemalloc-dev and libmimalloc-dev with apt-get if they
// are missing, builds into bench/c/build/ (ignored by git) and prints one
// line per allocator and benchmark, e.g.
//
//	c/glibc pair64 ns/op=6.90 min=6.85 max=7.10 reps=5
//
// TestCHarness (skipped with -short or without gcc) and BenchmarkCMalloc
// build the harness into a temporary directory against whichever of the
// three allocators is already installed; they never install anything.
package bench
