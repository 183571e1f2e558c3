package bench

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The C malloc harness (c/malloc_bench.c) can be run on its own with
// c/run.sh, which also installs jemalloc and mimalloc. The Go side below
// only ever uses what is already installed: it never touches the network.

// cAllocators are the allocators the C harness can be built against.
var cAllocators = []struct {
	name   string
	define string // -D flag selecting the allocator in malloc_bench.c
	lib    string // extra linker flag
}{
	{"glibc", "", ""},
	{"jemalloc", "-DUSE_JEMALLOC", "-ljemalloc"},
	{"mimalloc", "-DUSE_MIMALLOC", "-lmimalloc"},
}

// cBenchmarks are the benchmarks malloc_bench runs (its -b values).
var cBenchmarks = []string{"pair64", "pair64-parallel", "bulk64", "cross64", "handoff"}

var (
	cResultRE    = regexp.MustCompile(`^c/(\S+) (\S+)(?: threads=\d+)? ns/op=([0-9.]+) min=[0-9.]+ max=[0-9.]+ reps=\d+$`)
	cAllocatorRE = regexp.MustCompile(`^c/(\S+) allocator: .+$`)
)

// buildCHarness compiles malloc_bench.c for one allocator into dir and
// returns the binary's path. It fails (rather than installing anything)
// if the allocator's development package is missing.
func buildCHarness(dir, name, define, lib string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "malloc_bench_"+name)
	args := []string{"-O2", "-Wall", "-pthread"}
	if define != "" {
		args = append(args, define)
	}
	args = append(args, filepath.Join("c", "malloc_bench.c"), "-o", bin)
	if lib != "" {
		args = append(args, lib)
	}
	out, err := exec.Command(gcc, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// runCHarness runs bin with args and returns its allocator line and the
// ns/op of each benchmark it printed.
func runCHarness(bin string, args ...string) (allocator string, nsop map[string]float64, err error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	nsop = make(map[string]float64)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if cAllocatorRE.MatchString(line) {
			allocator = line
			continue
		}
		m := cResultRE.FindStringSubmatch(line)
		if m == nil {
			return "", nil, fmt.Errorf("unexpected output line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return "", nil, err
		}
		nsop[m[2]] = v
	}
	if allocator == "" {
		return "", nil, fmt.Errorf("no allocator line in output:\n%s", out)
	}
	return allocator, nsop, nil
}

// TestCHarness builds the C harness against every allocator that is
// installed and checks it runs, verifies its allocator and prints one
// well-formed line per benchmark.
func TestCHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs C code; skipped in -short mode")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not found")
	}
	dir := t.TempDir()
	for _, a := range cAllocators {
		t.Run(a.name, func(t *testing.T) {
			bin, err := buildCHarness(dir, a.name, a.define, a.lib)
			if err != nil {
				if a.name == "glibc" {
					t.Fatal(err)
				}
				t.Skipf("%s not installed (bench/c/run.sh installs it): %v", a.name, err)
			}
			alloc, nsop, err := runCHarness(bin, "-n", "20000", "-r", "1", "-t", "2")
			if err != nil {
				t.Fatal(err)
			}
			t.Log(alloc)
			for _, name := range cBenchmarks {
				if v, ok := nsop[name]; !ok || v <= 0 {
					t.Errorf("%s: ns/op %v, present %v", name, v, ok)
				}
			}
		})
	}
}

// BenchmarkCMalloc runs the C harness as Go sub-benchmarks,
// BenchmarkCMalloc/<allocator>/<benchmark>, so its numbers land next to
// the Go rows (same units: ns per alloc+free, per object for bulk64).
// Each sub-benchmark runs malloc_bench with -n b.N and reports the time
// measured inside the C program (process start and warm-up excluded).
// pair64-parallel uses GOMAXPROCS threads, like b.RunParallel.
// Allocators that are not installed are skipped; run bench/c/run.sh once
// to install jemalloc and mimalloc.
func BenchmarkCMalloc(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs C code; skipped in -short mode")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		b.Skip("gcc not found")
	}
	dir := b.TempDir()
	threads := strconv.Itoa(runtime.GOMAXPROCS(0))
	for _, a := range cAllocators {
		b.Run(a.name, func(b *testing.B) {
			bin, err := buildCHarness(dir, a.name, a.define, a.lib)
			if err != nil {
				b.Skipf("%s: %v", a.name, err)
			}
			logged := false
			for _, name := range cBenchmarks {
				b.Run(name, func(b *testing.B) {
					alloc, nsop, err := runCHarness(bin, "-b", name, "-r", "1",
						"-t", threads, "-n", strconv.Itoa(b.N))
					if err != nil {
						b.Fatal(err)
					}
					if !logged && testing.Verbose() {
						b.Log(alloc)
						logged = true
					}
					b.ReportMetric(nsop[name], "ns/op")
				})
			}
		})
	}
}
