package bench

// Memory benchmarks: resident bytes per payload byte (BenchmarkRSS) and
// what is left resident after freeing most objects (BenchmarkChurn), for
// hotslab, the Go heap and the C mallocs. No timing: every result is a
// custom metric.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// memChildEnv marks a child process started by BenchmarkRSS or
// BenchmarkChurn: in it, the leaf benchmark does the work; in the parent
// it starts the child (Go rows) or the C harness (C rows).
const memChildEnv = "HOTSLAB_BENCH_MEM_CHILD"

// rssSizes are BenchmarkRSS's object sizes.
var rssSizes = []int{16, 48, 64, 100, 200, 640, 1000, 1500, 3000}

// rssMaxObjects is BenchmarkRSS's object count; rssMaxPayload caps the
// payload (n*size) so that the largest sizes stay well below 4 GiB
// resident with every allocator's rounding (3000 B: 357913 objects, 1 GiB
// of payload; kmalloc-4k makes that 1.4 GiB).
const (
	rssMaxObjects = 1 << 20
	rssMaxPayload = 1 << 30
)

func rssObjects(size int) int { return min(rssMaxObjects, rssMaxPayload/size) }

// churnObjects and churnSize: BenchmarkChurn allocates 4M × 64 B.
const (
	churnObjects = 4 << 20
	churnSize    = 64
)

// memSystemSize is the memory of the System a hotslab row's child
// creates (one node): enough for the largest row (kmalloc-4k × 357913 =
// 1.4 GiB). Onlining writes its struct pages (48 B per 4 KiB page); the
// child reads its baseline after that, and reports it as setup-MB.
const memSystemSize = 2 << 30

// memAllocator is one row of the memory benchmarks, set up for objects of
// one size in a child process.
type memAllocator struct {
	alloc func() unsafe.Pointer
	free  func(unsafe.Pointer)
	// giveBack asks the allocator to return free memory to the OS and
	// says what it called.
	giveBack func() string
	// reported returns mem's running total of bytes given back to the OS
	// by its page reporter (hotslab rows; nil for the others).
	reported func() uint64
	// slot is the bytes the allocator reserves per object (0: unknown).
	slot int
}

// memRows are the Go rows of BenchmarkRSS and BenchmarkChurn; each runs in
// its own child process. cMemRows are run by the C harness.
var (
	memRows = []struct {
		name  string
		setup func(b *testing.B, size int) memAllocator
	}{
		{"hotslab-kmalloc", setupHotslabKmalloc},
		{"hotslab-cache", setupHotslabCache},
		{"heap", setupHeap},
	}
	cMemRows = []string{"glibc", "jemalloc", "mimalloc"}
)

// memSlab creates a fresh one-node System of memSystemSize and an
// Allocator on it.
func memSlab(b *testing.B) *slab.Allocator {
	sys, err := mem.New(mem.Config{Nodes: 1, BlockSize: 128 << 20, InitialPerNode: memSystemSize})
	if err != nil {
		b.Fatal(err)
	}
	a, err := slab.New(sys, nil)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func setupHotslabKmalloc(b *testing.B, size int) memAllocator {
	a := memSlab(b)
	p, err := a.Kmalloc(size, 0)
	if err != nil {
		b.Fatal(err)
	}
	slot := a.Ksize(p)
	a.Kfree(p)
	return memAllocator{
		alloc: func() unsafe.Pointer {
			p, err := a.Kmalloc(size, 0)
			if err != nil {
				panic(err)
			}
			return p
		},
		free: a.Kfree,
		giveBack: func() string {
			if _, err := a.Shrink(context.Background()); err != nil {
				panic(err)
			}
			return "Allocator.Shrink (every cache, then mem's ReportFreePages)"
		},
		reported: func() uint64 { return a.System().Stats().ReportedBytes },
		slot:     slot,
	}
}

func setupHotslabCache(b *testing.B, size int) memAllocator {
	a := memSlab(b)
	c, err := a.NewCache(fmt.Sprintf("mem-%d", size), size, &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		b.Fatal(err)
	}
	return memAllocator{
		alloc: func() unsafe.Pointer {
			p, err := c.Alloc()
			if err != nil {
				panic(err)
			}
			return p
		},
		free: c.Free,
		giveBack: func() string {
			c.Shrink() // gives the empty slabs back to the page allocator
			if _, err := a.System().ReportFreePages(context.Background()); err != nil {
				panic(err)
			}
			return "Cache.Shrink, then mem's ReportFreePages"
		},
		reported: func() uint64 { return a.System().Stats().ReportedBytes },
		slot:     c.Size(),
	}
}

// setupHeap allocates with make([]byte, size); free drops the reference
// (the caller clears its slot in the pointer array, which is what keeps
// the object alive), and giveBack collects and returns the freed spans.
func setupHeap(b *testing.B, size int) memAllocator {
	return memAllocator{
		alloc: func() unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]byte, size))) },
		free:  func(unsafe.Pointer) {},
		giveBack: func() string {
			runtime.GC()
			debug.FreeOSMemory()
			return "runtime.GC+debug.FreeOSMemory"
		},
	}
}

// fillPattern is what every object is written with, in full: a program
// writes its objects, and an allocator that hands out untouched memory
// must not look smaller for it.
var fillPattern = func() (p [8192]byte) {
	for i := range p {
		p[i] = 0xa5
	}
	return p
}()

// memPtrs returns the array that holds the objects' pointers, written so
// that it is resident before the baseline is read: its 8 B per object are
// in no row's growth. For the Go heap it is also what keeps the objects
// alive (so it must be a Go slice of pointers, scanned by the GC; the
// hotslab pointers in it point outside the Go heap and are ignored).
func memPtrs(n int) []unsafe.Pointer {
	ptrs := make([]unsafe.Pointer, n)
	for i := range ptrs {
		ptrs[i] = nil // fault every page in
	}
	return ptrs
}

// fillObjects allocates len(ptrs) objects of size bytes and writes each.
func fillObjects(ma memAllocator, ptrs []unsafe.Pointer, size int) {
	for i := range ptrs {
		p := ma.alloc()
		copy(unsafe.Slice((*byte)(p), size), fillPattern[:size])
		ptrs[i] = p
	}
}

// splitmix64 picks BenchmarkChurn's random victims; the C harness uses the
// same function, so the Go and C rows free the same indexes.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// churnFrees reports whether BenchmarkChurn frees object i of n: the
// oldest 3/4, or about 3/4 chosen at random.
func churnFrees(pattern string, i, n int) bool {
	if pattern == "random" {
		return splitmix64(uint64(i))&3 != 0
	}
	return i < n/4*3
}

const mib = 1 << 20

// BenchmarkRSS measures the resident memory per payload byte of live
// objects: in a fresh child process, rssObjects(size) objects (1M; fewer
// for large sizes, so that the payload stays at most 1 GiB) are allocated,
// each written in full, and kept; RSS is read (/proc/self/statm, after a
// GC and debug.FreeOSMemory) before and after. Reported:
//
//	rss/payload  RSS growth / (n * size): 1.00 is no overhead at all
//	rss-MB       the RSS growth
//	slot-B       bytes the allocator reserves per object, where it says
//	             (hotslab: Ksize, Cache.Size)
//	setup-MB     (hotslab) RSS of creating the System and Allocator,
//	             before the baseline: mostly the struct pages of the
//	             memSystemSize onlined, 48 B per 4 KiB page whether used
//	             or not, so not a per-object cost
//
// Rows: hotslab-kmalloc (a.Kmalloc(size, 0)), hotslab-cache (a dedicated
// NoMerge cache of that size), heap (make([]byte, size)), and c-glibc,
// c-jemalloc, c-mimalloc (malloc_bench -m rss; the same procedure in C).
//
// The array holding the n pointers is allocated and written before the
// baseline in every row (a Go []unsafe.Pointer, which for the heap row is
// what keeps the objects alive; a malloc'ed array in C), so its 8 B per
// object are in no number: the rows measure the allocator alone.
//
// Skipped with -short. Run with -benchtime=1x (each row does its work once
// whatever b.N is; the iteration column is meaningless).
func BenchmarkRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("allocates up to 1.4 GiB per row; skipped in -short mode")
	}
	variants := make([]string, len(rssSizes))
	for i, size := range rssSizes {
		variants[i] = "size=" + strconv.Itoa(size)
	}
	runMemRows(b, variants,
		func(b *testing.B, setup func(*testing.B, int) memAllocator, i int) { rssChild(b, setup, rssSizes[i]) },
		func(b *testing.B, bin string, i int) []benchMetric {
			size := rssSizes[i]
			kv := runCMem(b, bin, "-m", "rss", "-s", strconv.Itoa(size), "-n", strconv.Itoa(rssObjects(size)))
			return []benchMetric{
				{kv.float(b, "rss/payload"), "rss/payload"},
				{kv.float(b, "rss-growth") / mib, "rss-MB"},
			}
		})
}

// runMemRows runs, for every variant, each Go row of memRows in a child
// process (goChild there; the parent reports what the child printed) and
// each C allocator's row through the harness (cRow's metrics).
func runMemRows(b *testing.B, variants []string,
	goChild func(b *testing.B, setup func(*testing.B, int) memAllocator, variant int),
	cRow func(b *testing.B, bin string, variant int) []benchMetric) {
	child := os.Getenv(memChildEnv) != ""
	for _, row := range memRows {
		b.Run(row.name, func(b *testing.B) {
			for i, v := range variants {
				b.Run(v, func(b *testing.B) {
					if child {
						goChild(b, row.setup, i)
						return
					}
					reportMemChild(b)
				})
			}
		})
	}
	if child {
		return
	}
	for _, name := range cMemRows {
		b.Run("c-"+name, func(b *testing.B) {
			bin := cHarness(b, name)
			for i, v := range variants {
				b.Run(v, func(b *testing.B) { reportMem(b, cRow(b, bin, i)) })
			}
		})
	}
}

func rssChild(b *testing.B, setup func(*testing.B, int) memAllocator, size int) {
	n := rssObjects(size)
	_, rss0 := settledMemory()
	ma := setup(b, size)
	ptrs := memPtrs(n)
	_, before := settledMemory()
	fillObjects(ma, ptrs, size)
	_, after := settledMemory()
	runtime.KeepAlive(ptrs)
	growth := float64(after) - float64(before)
	b.ReportMetric(0, "ns/op") // not a timing
	b.ReportMetric(growth/float64(n*size), "rss/payload")
	b.ReportMetric(growth/mib, "rss-MB")
	if ma.slot > 0 {
		b.ReportMetric(float64(ma.slot), "slot-B")
		setup := float64(before) - float64(rss0) - float64(n*8)
		b.ReportMetric(setup/mib, "setup-MB")
	}
}

// BenchmarkChurn measures what stays resident after most objects are
// freed: in a fresh child process, 4M objects of 64 B are allocated (each
// written in full), then 75 % are freed, the oldest 3M ("oldest") or about
// 3M chosen by a hash of the index ("random", the same ones in every row),
// then the allocator is asked to give memory back:
//
//	hotslab-cache    Cache.Shrink on the dedicated NoMerge cache (empty
//	                 slabs back to the page allocator), then
//	                 mem.System.ReportFreePages (free memory to the OS)
//	hotslab-kmalloc  Allocator.Shrink: every cache, then ReportFreePages
//	heap             runtime.GC and debug.FreeOSMemory (dropping the
//	                 references is the free)
//	c-glibc          malloc_trim(0)
//	c-jemalloc       mallctl thread.tcache.flush and
//	                 arena.<MALLCTL_ARENAS_ALL>.purge
//	c-mimalloc       mi_collect(true)
//
// hotslab gives memory back through mem's free page reporting: free buddy
// chunks of the reporting order (default 9: 2 MiB) and up are given back
// with MADV_DONTNEED; its background reporter also does so 2 s after a
// free leaves such a chunk. A slab with one live object keeps its pages,
// in every allocator here.
//
// Reported, RSS growth over the baseline read before the allocations
// (the pointer array is allocated and written before it, as in
// BenchmarkRSS): peak-MB with everything live, freed-MB right after the
// frees, after-MB after giving back, rss/live = after-MB / the live
// payload (1M × 64 B; 1.00 would be perfect), and for hotslab reported-MB,
// what mem's page reporter says it gave back since the peak
// (Stats.ReportedBytes).
//
// Skipped with -short. Run with -benchtime=1x.
func BenchmarkChurn(b *testing.B) {
	if testing.Short() {
		b.Skip("allocates 4M objects per row; skipped in -short mode")
	}
	patterns := []string{"oldest", "random"}
	runMemRows(b, patterns,
		func(b *testing.B, setup func(*testing.B, int) memAllocator, i int) { churnChild(b, setup, patterns[i]) },
		func(b *testing.B, bin string, i int) []benchMetric {
			kv := runCMem(b, bin, "-m", "churn", "-p", patterns[i],
				"-s", strconv.Itoa(churnSize), "-n", strconv.Itoa(churnObjects))
			return []benchMetric{
				{kv.float(b, "peak") / mib, "peak-MB"},
				{kv.float(b, "freed") / mib, "freed-MB"},
				{kv.float(b, "after") / mib, "after-MB"},
				{kv.float(b, "rss/live"), "rss/live"},
			}
		})
}

func churnChild(b *testing.B, setup func(*testing.B, int) memAllocator, pattern string) {
	const n, size = churnObjects, churnSize
	ma := setup(b, size)
	ptrs := memPtrs(n)
	_, before := settledMemory()
	fillObjects(ma, ptrs, size)
	_, peak := settledMemory()
	var rep0 uint64
	if ma.reported != nil {
		rep0 = ma.reported()
	}
	live := 0
	for i, p := range ptrs {
		if churnFrees(pattern, i, n) {
			ma.free(p)
			ptrs[i] = nil
		} else {
			live++
		}
	}
	freed := rssBytes() // no GC: for the heap row, collecting is giveBack's part
	how := ma.giveBack()
	after := rssBytes()
	runtime.KeepAlive(ptrs)
	b.Logf("gave back with %s", how)
	b.ReportMetric(0, "ns/op") // not a timing
	b.ReportMetric((float64(peak)-float64(before))/mib, "peak-MB")
	b.ReportMetric((float64(freed)-float64(before))/mib, "freed-MB")
	b.ReportMetric((float64(after)-float64(before))/mib, "after-MB")
	b.ReportMetric((float64(after)-float64(before))/float64(live*size), "rss/live")
	if ma.reported != nil {
		b.ReportMetric(float64(ma.reported()-rep0)/mib, "reported-MB")
	}
}

// memResults caches the parent's results by benchmark name: the framework
// calls a benchmark function again with a larger b.N when the first call
// was shorter than -benchtime, and a second child would only repeat the
// first.
var (
	memResultsMu sync.Mutex
	memResults   = map[string][]benchMetric{}
)

// reportMemChild runs b's benchmark in a child process (once) and reports
// its metrics.
func reportMemChild(b *testing.B) {
	memResultsMu.Lock()
	ms, ok := memResults[b.Name()]
	memResultsMu.Unlock()
	if !ok {
		for _, m := range runBenchChild(b, b.Name(), memChildEnv, "-test.benchtime=1x") {
			if m.unit != "ns/op" {
				ms = append(ms, m)
			}
		}
	}
	reportMem(b, ms)
}

// reportMem caches ms as b's result and reports it, without ns/op.
func reportMem(b *testing.B, ms []benchMetric) {
	memResultsMu.Lock()
	memResults[b.Name()] = ms
	memResultsMu.Unlock()
	b.ReportMetric(0, "ns/op") // not a timing: hide it
	for _, m := range ms {
		b.ReportMetric(m.value, m.unit)
	}
}

// cHarnessBins caches the C harness binaries built by cHarness.
var (
	cHarnessMu   sync.Mutex
	cHarnessBins = map[string]string{}
	cHarnessDir  string
)

// cHarness builds (once per process) and returns the C harness for
// allocator name, or skips b if that allocator is not installed.
func cHarness(b *testing.B, name string) string {
	if _, err := exec.LookPath("gcc"); err != nil {
		b.Skip("gcc not found")
	}
	cHarnessMu.Lock()
	defer cHarnessMu.Unlock()
	if bin, ok := cHarnessBins[name]; ok {
		return bin
	}
	if cHarnessDir == "" {
		d, err := os.MkdirTemp("", "hotslab-bench-c")
		if err != nil {
			b.Fatal(err)
		}
		cHarnessDir = d // left for the OS's temporary directory cleanup
	}
	for _, a := range cAllocators {
		if a.name != name {
			continue
		}
		bin, err := buildCHarness(cHarnessDir, a.name, a.define, a.lib)
		if err != nil {
			b.Skipf("%s: %v", name, err)
		}
		cHarnessBins[name] = bin
		return bin
	}
	b.Fatalf("unknown C allocator %q", name)
	return ""
}

// cKV is the key=value fields of a C harness memory line.
type cKV map[string]string

func (kv cKV) float(b *testing.B, key string) float64 {
	v, err := strconv.ParseFloat(kv[key], 64)
	if err != nil {
		b.Fatalf("C harness: field %s=%q: %v", key, kv[key], err)
	}
	return v
}

// runCMem runs the C harness in a memory mode (once per benchmark name;
// see memResults) and returns the key=value fields of its result line.
func runCMem(b *testing.B, bin string, args ...string) cKV {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	kv, err := parseCMem(string(out))
	if err != nil {
		b.Fatal(err)
	}
	return kv
}

// parseCMem parses the C harness's output in a memory mode: an
// "allocator:" line and one "c/<alloc> rss|churn key=value ..." line.
func parseCMem(out string) (cKV, error) {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "c/") || (f[1] != "rss" && f[1] != "churn") {
			continue
		}
		kv := cKV{}
		for _, w := range f[2:] {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return nil, fmt.Errorf("C harness: bad field %q in %q", w, line)
			}
			kv[k] = v
		}
		return kv, nil
	}
	return nil, fmt.Errorf("C harness: no result line in:\n%s", out)
}

func TestParseCMem(t *testing.T) {
	kv, err := parseCMem("c/glibc allocator: glibc 2.36 (x)\n" +
		"c/glibc churn pattern=random size=64 n=4 live=1 peak=10 freed=9 after=8 rss/live=0.5 return=malloc_trim(0)\n")
	if err != nil {
		t.Fatal(err)
	}
	if kv["rss/live"] != "0.5" || kv["after"] != "8" || kv["return"] != "malloc_trim(0)" {
		t.Errorf("parseCMem = %v", kv)
	}
	if _, err := parseCMem("c/glibc allocator: glibc\n"); err == nil {
		t.Error("parseCMem accepted output without a result line")
	}
}

// TestChurnFrees checks that both patterns free 3/4 of the objects.
func TestChurnFrees(t *testing.T) {
	const n = 1 << 16
	for _, pattern := range []string{"oldest", "random"} {
		freed := 0
		for i := range n {
			if churnFrees(pattern, i, n) {
				freed++
			}
		}
		if lo, hi := n*3/4-n/100, n*3/4+n/100; freed < lo || freed > hi {
			t.Errorf("%s: frees %d of %d", pattern, freed, n)
		}
	}
	// splitmix64(0) is the first output of the reference SplitMix64
	// generator seeded with 0. (TestCHarnessMemModes checks that the C
	// harness keeps the same objects.)
	if got := splitmix64(0); got != 0xe220a8397b1dcdaf {
		t.Errorf("splitmix64(0) = %#x", got)
	}
}

// TestCHarnessMemModes runs the C harness's memory modes on a few objects
// (fast; skipped with -short or without gcc, like TestCHarness).
func TestCHarnessMemModes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs C code; skipped in -short mode")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not found")
	}
	bin, err := buildCHarness(t.TempDir(), "glibc", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-m", "rss", "-s", "100", "-n", "10000"},
		{"-m", "churn", "-p", "random", "-n", "10000"},
		{"-m", "churn", "-p", "oldest", "-n", "10000"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		kv, err := parseCMem(string(out))
		if err != nil {
			t.Fatal(err)
		}
		key := "rss/payload"
		if args[1] == "churn" {
			key = "rss/live"
			// The C harness keeps the same objects as the Go rows.
			live := 0
			for i := range 10000 {
				if !churnFrees(args[3], i, 10000) {
					live++
				}
			}
			if kv["live"] != strconv.Itoa(live) {
				t.Errorf("%v: live=%q, the Go rows keep %d", args, kv["live"], live)
			}
		}
		if _, err := strconv.ParseFloat(kv[key], 64); err != nil {
			t.Errorf("%v: %s=%q", args, key, kv[key])
		}
	}
}
