// Package bench holds the side-by-side benchmarks that compare hotslab with
// its peers. All of it lives in _test.go files; this file only documents it.
// README.md has the commands in short and the latest numbers.
//
// # Benchmarks
//
// Every timing benchmark uses 64-byte objects and reports ns/op per object
// (one allocation plus one free), so rows of one benchmark, and the C
// harness below, are directly comparable. Every row loops the same way, a
// plain "for i := 0; i < b.N; i++" (pb.Next under RunParallel), as the C
// harness does; never b.Loop, under which Go 1.26 keeps every variable of
// the loop body in memory (a few loads and stores per iteration that the
// b.N rows do not pay: the hotslab rows and the floors used b.Loop until
// 2026-12-01 while the peer rows used b.N).
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
//	BenchmarkLIFOFloor              not an allocator: an inlined pop, one-byte write
//	                                and push on an array stack on the heap, nothing
//	                                validated; the floor under any sheaf-style pair
//	BenchmarkLIFOFloorCalls         the same with the pop and push behind calls
//	                                that are not inlined (see floor_test.go for the
//	                                instructions of each, checked with objdump)
//	BenchmarkRSS/<impl>/size=<S>    memory, no timing: see Memory below
//	BenchmarkChurn/<impl>/<pattern> memory, no timing: see Memory below
//
// Rows ("impls"):
//
//	hotslab, hotslab-sheaf  hotslab itself (registered from hotslab_test.go):
//	                        Cache.Alloc/Free, and a prefilled Sheaf
//	hotslab-handle          a goroutine-owned slab.Magazine (magazine_test.go)
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
// # Memory
//
// BenchmarkRSS and BenchmarkChurn (mem_test.go) report memory, not time:
// custom metrics only (ns/op is hidden). Every Go row runs in a fresh
// child process (this test binary re-executed for that row alone); the C
// rows run malloc_bench -m rss / -m churn. Every object is written in
// full. The array holding the pointers is allocated and written before the
// baseline RSS is read, in every row, so its 8 B per object are in no
// number (for the heap row it is a []unsafe.Pointer, what keeps the
// objects alive; in C a malloc'ed array).
//
//	BenchmarkRSS/<impl>/size=<S>   1M live objects of S bytes (S = 16, 48, 64,
//	                               100, 200, 640, 1000, 1500, 3000; fewer objects
//	                               above 1 KiB: at most 1 GiB of payload);
//	                               rss/payload = RSS growth / (n*S), rss-MB,
//	                               slot-B (hotslab: the slot size) and setup-MB
//	                               (hotslab: RSS of creating the System and
//	                               Allocator, read before the baseline: 48 B of
//	                               struct page per 4 KiB of the 2 GiB onlined,
//	                               used or not — 1.2 % of a System sized to its
//	                               payload, not in rss/payload)
//	BenchmarkChurn/<impl>/<pat>    4M × 64 B, free 75 % (oldest: the first 3M;
//	                               random: those whose splitmix64(index) has low
//	                               bits != 0, the same in Go and C), give memory
//	                               back, then peak-MB, freed-MB, after-MB (RSS
//	                               growth at each step) and rss/live = after /
//	                               the live payload
//
// impl: hotslab-kmalloc (a.Kmalloc(S, 0); Shrink of every kmalloc cache),
// hotslab-cache (a dedicated NoMerge cache; Cache.Shrink), heap
// (make([]byte, S); runtime.GC and debug.FreeOSMemory), c-glibc
// (malloc_trim(0)), c-jemalloc (thread.tcache.flush and
// arena.<MALLCTL_ARENAS_ALL>.purge), c-mimalloc (mi_collect(true)). The
// hotslab rows run on a fresh one-node System of 2 GiB. Both benchmarks
// are skipped with -short, and use at most ~1.5 GiB per process.
//
//	go test -run '^$' -bench 'RSS|Churn' -benchtime=1x ./bench/
//
// (-benchtime=1x: each row does its work once whatever b.N is; with the
// default the framework calls the parent again with a larger b.N, which
// reports the cached result, so the iteration column is meaningless.)
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
// shared machines: use -count and report medians, or better, interleave.
//
// # Interleaved runs: interleave.sh
//
// bench/interleave.sh (go run ./bench/cmd/interleave; go doc
// ./bench/cmd/interleave for the flags) builds this test binary once and
// the C harness once per allocator, then for N rounds runs, alternately,
// the binary (-test.count 1) and each C harness (pair64, pair64-parallel
// on -cpu threads, bulk64; -r 1), Go first in odd rounds and C first in
// even ones. It prints the CPU model (with family/model: a VM may say only
// "AMD EPYC"), the Go version, the date, the commit, then per row (Pair64/
// hotslab, Pair64/c-jemalloc, Bulk64/syncpool, LIFOFloor, ...) the median
// ns/op over the rounds, min, max, and the medians of the per-round ratios
// to the jemalloc row of the same shape and to jemalloc's pair, then
// chosen ratios (hotslab / sync.Pool for the pair, parallel and bulk,
// hotslab / jemalloc, hotslab-sheaf / each floor; -ratio A:B,... for
// others). A ratio taken within one round cancels most of the load a
// shared machine puts on both sides.
//
//	bench/interleave.sh                        # 9 rounds, -benchtime 1s: ~4 min
//	bench/interleave.sh -rounds 15 -benchtime 2s
//	bench/interleave.sh -rounds 5 -bench '^BenchmarkPair64$' -cbench pair64 -v
//	bench/interleave.sh -pgo '^BenchmarkPair64(Parallel)?$/hotslab-handle$'
//
// -pgo RE adds rows named row+pgo: the rows RE selects, run from a second
// test binary built with -pgo from a CPU profile of one run of them (how a
// program gets Go's inliner to inline a Magazine's Free at a hot site).
//
// # C harness
//
// c/malloc_bench.c times malloc/free of 64 bytes in C (pair64,
// pair64-parallel, bulk64, cross64, handoff: the same shapes as the Go
// benchmarks: a plain counted loop, a one-byte write per object, and the
// pointer stored to a thread-local volatile so that GCC cannot drop a
// malloc/free pair), -O2, clock_gettime(CLOCK_MONOTONIC), median of -r
// runs after a warm-up; -b takes a comma-separated list. -m rss and -m
// churn are the memory modes BenchmarkRSS and BenchmarkChurn run. Each
// binary first proves which malloc it uses (glibc: mallinfo2 moves;
// jemalloc: mallctl "thread.allocated" moves; mimalloc: mi_is_in_heap_region
// on a malloc() pointer) and prints its version.
//
//	bench/c/run.sh                     # build for glibc, jemalloc, mimalloc and run
//	bench/c/run.sh -n 20000000 -r 5 -t 2
//	bench/c/run.sh -m rss -s 100       # RSS growth of 1M × 100 B
//	bench/c/run.sh -m churn -p random  # 4M × 64 B, free 75 %, trim/purge
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
