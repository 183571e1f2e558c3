// Command interleave runs the Go benchmark rows of package bench and the C
// malloc harness (bench/c/malloc_bench.c) alternately, in one run, for a
// number of rounds, and prints per row the median ns/op and its ratios to
// reference rows, each ratio the median of the per-round ratios. Running
// the two side by side, round after round, lets a slow or noisy stretch of
// a shared machine hit both sides alike; a ratio taken within a round
// cancels most of it.
//
// It builds the bench test binary once (go test -c) and the C harness once
// per allocator (gcc -O2, as bench/c/run.sh does; jemalloc and mimalloc
// rows need libjemalloc-dev and libmimalloc-dev, which it never installs:
// allocators that fail to build are left out with a note). Each round runs
// the test binary with -test.count 1 and every C harness with -r 1 (one
// timed run after its warm-up); odd rounds run Go first, even rounds C
// first.
//
// Usage, from the repository root or bench/:
//
//	bench/interleave.sh                       # 9 rounds, defaults below
//	bench/interleave.sh -rounds 15 -benchtime 2s
//	go run ./bench/cmd/interleave -rounds 5 -bench 'BenchmarkPair64$' -cbench pair64
//
// Rows are named Shape/impl: the Go rows as the benchmarks name them
// (Pair64/hotslab, Pair64Parallel/syncpool, Bulk64/heap, LIFOFloor), the C
// rows as Pair64/c-jemalloc, Pair64Parallel/c-glibc, Bulk64/c-mimalloc
// (CrossP64/c-… and CrossP64/c-…-handoff with -cbench cross64,handoff).
// Per row it prints the median, min and max ns/op over the rounds, the
// median of row / (the -ref row of the same shape) and of row / Pair64/-ref
// (the floors count as shape Pair64), and then every -ratio A:B.
//
// With -pgo RE, the rows RE selects also run from a second test binary
// built with profile-guided optimisation (go test -c -pgo) from a CPU
// profile of one run of them, as rows named row+pgo, in the same rounds.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	rounds    = flag.Int("rounds", 9, "rounds (each: the Go binary once and every C harness once)")
	goBench   = flag.String("bench", `^(BenchmarkPair64|BenchmarkPair64Parallel|BenchmarkBulk64|BenchmarkLIFOFloor|BenchmarkLIFOFloorCalls)$`, "-test.bench pattern for the Go rows (empty: no Go rows)")
	benchtime = flag.String("benchtime", "1s", "-test.benchtime for the Go rows")
	cpus      = flag.Int("cpu", runtime.NumCPU(), "GOMAXPROCS of the Go rows (-test.cpu) and threads of the C parallel row (-t)")
	cAllocs   = flag.String("c", "glibc,jemalloc,mimalloc", "C allocators, comma-separated (empty: no C rows)")
	cBench    = flag.String("cbench", "pair64,pair64-parallel,bulk64", "C harness benchmarks (its -b)")
	cN        = flag.Int("cn", 20000000, "objects per C timed run (its -n)")
	ref       = flag.String("ref", "c-jemalloc", "reference impl for the per-row ratio columns")
	ratios    = flag.String("ratio", "Pair64/hotslab:Pair64/syncpool,Pair64Parallel/hotslab:Pair64Parallel/syncpool,"+
		"Bulk64/hotslab:Bulk64/syncpool,Pair64/hotslab:Pair64/c-jemalloc,Pair64/hotslab-sheaf:LIFOFloor,"+
		"Pair64/hotslab-sheaf:LIFOFloorCalls,Pair64/hotslab:LIFOFloorCalls",
		"extra ratios A:B (row names), comma-separated; each the median of per-round A/B")
	pgo     = flag.String("pgo", "", "-test.bench pattern of Go rows to run a second time, built with profile-guided optimisation from a CPU profile of those rows (named row+pgo; empty: none)")
	dir     = flag.String("dir", "", "the bench package directory (default: ./bench or . , whichever holds c/malloc_bench.c)")
	verbose = flag.Bool("v", false, "print every run's raw output")
)

func main() {
	flag.Parse()
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "interleave:", err)
		os.Exit(1)
	}
}

// sample is one round's ns/op of every row.
type sample map[string]float64

func run(w io.Writer) error {
	bdir, err := benchDir()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "interleave")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	goVersion := strings.TrimSpace(output("go", "env", "GOVERSION")) + " " + runtime.GOOS + "/" + runtime.GOARCH
	fmt.Fprintf(w, "# cpu: %s (%d CPUs)\n", cpuModel(), runtime.NumCPU())
	fmt.Fprintf(w, "# go: %s\n", goVersion)
	fmt.Fprintf(w, "# date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "# command: interleave %s\n", strings.Join(os.Args[1:], " "))
	if out, err := exec.Command("git", "-C", bdir, "log", "-1", "--format=%h %s").Output(); err == nil {
		fmt.Fprintf(w, "# commit: %.100s\n", strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("git", "-C", bdir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		fmt.Fprintf(w, "# (the work tree has uncommitted changes)\n")
	}

	var goBin string
	if *goBench != "" {
		goBin = filepath.Join(tmp, "bench.test")
		cmd := exec.Command("go", "test", "-c", "-o", goBin, ".")
		cmd.Dir = bdir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go test -c in %s: %v\n%s", bdir, err, out)
		}
		fmt.Fprintf(w, "# go rows: -test.bench '%s' -test.benchtime %s -test.cpu %d -test.count 1 per round\n", *goBench, *benchtime, *cpus)
	}
	var pgoBin string
	if *pgo != "" {
		if pgoBin, err = buildPGO(bdir, tmp); err != nil {
			return err
		}
		fmt.Fprintf(w, "# +pgo rows: -test.bench '%s', the test binary built with -pgo from a CPU profile of one run of them\n", *pgo)
	}
	type cBin struct{ name, path string }
	var cBins []cBin
	if *cAllocs != "" {
		fmt.Fprintf(w, "# c rows: gcc %s -O2; malloc_bench -b %s -n %d -r 1 -t %d per round\n",
			strings.TrimSpace(output("gcc", "-dumpfullversion")), *cBench, *cN, *cpus)
		for _, name := range strings.Split(*cAllocs, ",") {
			path, err := buildC(bdir, tmp, name)
			if err != nil {
				fmt.Fprintf(w, "# c/%s left out: %v\n", name, err)
				continue
			}
			cBins = append(cBins, cBin{name, path})
		}
	}
	fmt.Fprintf(w, "# rounds: %d (odd rounds Go first, even rounds C first)\n", *rounds)

	var samples []sample
	shown := map[string]bool{} // allocator lines already printed
	for r := 1; r <= *rounds; r++ {
		s := sample{}
		runGo := func() error {
			if goBin == "" {
				return nil
			}
			cmd := exec.Command(goBin, "-test.run", "^$", "-test.bench", *goBench, "-test.count", "1",
				"-test.benchtime", *benchtime, "-test.cpu", strconv.Itoa(*cpus))
			cmd.Dir = bdir
			out, err := cmd.CombinedOutput()
			if *verbose {
				fmt.Fprintf(w, "## round %d go\n%s", r, out)
			}
			if err != nil {
				return fmt.Errorf("round %d: %s: %v\n%s", r, goBin, err, out)
			}
			if err := parseGo(out, s); err != nil || pgoBin == "" {
				return err
			}
			out, err = exec.Command(pgoBin, "-test.run", "^$", "-test.bench", *pgo, "-test.count", "1",
				"-test.benchtime", *benchtime, "-test.cpu", strconv.Itoa(*cpus)).CombinedOutput()
			if *verbose {
				fmt.Fprintf(w, "## round %d go +pgo\n%s", r, out)
			}
			if err != nil {
				return fmt.Errorf("round %d: %s: %v\n%s", r, pgoBin, err, out)
			}
			ps := sample{}
			if err := parseGo(out, ps); err != nil {
				return err
			}
			for k, v := range ps {
				s[k+"+pgo"] = v
			}
			return nil
		}
		runC := func() error {
			for _, c := range cBins {
				out, err := exec.Command(c.path, "-b", *cBench, "-n", strconv.Itoa(*cN), "-r", "1",
					"-t", strconv.Itoa(*cpus)).CombinedOutput()
				if *verbose {
					fmt.Fprintf(w, "## round %d c/%s\n%s", r, c.name, out)
				}
				if err != nil {
					return fmt.Errorf("round %d: %s: %v\n%s", r, c.path, err, out)
				}
				alloc, err := parseC(out, s)
				if err != nil {
					return err
				}
				if !shown[c.name] {
					shown[c.name] = true
					fmt.Fprintf(w, "# %s\n", alloc)
				}
			}
			return nil
		}
		first, second := runGo, runC
		if r%2 == 0 {
			first, second = runC, runGo
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		samples = append(samples, s)
		fmt.Fprintf(os.Stderr, "interleave: round %d/%d done\n", r, *rounds)
	}
	fmt.Fprintln(w)
	report(w, samples, *ref, parseRatios(*ratios))
	return nil
}

// benchDir returns the bench package directory.
func benchDir() (string, error) {
	if *dir != "" {
		return filepath.Abs(*dir)
	}
	for _, d := range []string{"bench", "."} {
		if _, err := os.Stat(filepath.Join(d, "c", "malloc_bench.c")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("cannot find the bench directory (c/malloc_bench.c); run from the repository root or bench/, or pass -dir")
}

// buildPGO builds the bench test binary, runs the -pgo rows once with a
// CPU profile, and builds the binary again with that profile (how a user
// gets Go's inliner to inline a Magazine's Free at a hot call site).
func buildPGO(bdir, tmp string) (string, error) {
	plain := filepath.Join(tmp, "bench-profile.test")
	prof := filepath.Join(tmp, "pgo.pprof")
	bin := filepath.Join(tmp, "bench-pgo.test")
	for _, args := range [][]string{
		{"go", "test", "-c", "-o", plain, "."},
		{plain, "-test.run", "^$", "-test.bench", *pgo, "-test.count", "1", "-test.benchtime", *benchtime,
			"-test.cpu", strconv.Itoa(*cpus), "-test.cpuprofile", prof},
		{"go", "test", "-c", "-pgo", prof, "-o", bin, "."},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = bdir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bin, nil
}

// buildC compiles the C harness for one allocator.
func buildC(bdir, tmp, name string) (string, error) {
	var extra []string
	switch name {
	case "glibc":
	case "jemalloc":
		extra = []string{"-DUSE_JEMALLOC", "-ljemalloc"}
	case "mimalloc":
		extra = []string{"-DUSE_MIMALLOC", "-lmimalloc"}
	default:
		return "", fmt.Errorf("unknown allocator (glibc, jemalloc, mimalloc)")
	}
	bin := filepath.Join(tmp, "malloc_bench_"+name)
	args := []string{"-O2", "-Wall", "-pthread", filepath.Join(bdir, "c", "malloc_bench.c"), "-o", bin}
	args = append(args, extra...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return bin, nil
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return string(out)
}

// cpuModel returns the first CPU's "model name" of /proc/cpuinfo, with
// its family, model and stepping (a VM may show only "AMD EPYC"; family
// 26 is Zen 5).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	info := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if len(info) > 0 {
				break // end of the first CPU
			}
			continue
		}
		if k = strings.TrimSpace(k); info[k] == "" {
			info[k] = strings.TrimSpace(v)
		}
	}
	if info["model name"] == "" {
		return "?"
	}
	return fmt.Sprintf("%s, family %s model %s stepping %s", info["model name"], info["cpu family"], info["model"], info["stepping"])
}

var goLineRE = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseGo adds the ns/op of every benchmark line of a go test -bench
// output to s, named without "Benchmark" and the -GOMAXPROCS suffix.
func parseGo(out []byte, s sample) error {
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		m := goLineRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			if f[i+1] != "ns/op" {
				continue
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("bad go benchmark line %q", line)
			}
			s[m[1]] = v
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no benchmark results in the go output:\n%s", out)
	}
	return nil
}

var (
	cLineRE  = regexp.MustCompile(`^c/(\S+) (\S+)(?: threads=\d+)? ns/op=([0-9.]+) `)
	cShapeOf = map[string]string{
		"pair64":          "Pair64",
		"pair64-parallel": "Pair64Parallel",
		"bulk64":          "Bulk64",
		"cross64":         "CrossP64",
		"handoff":         "CrossP64",
	}
)

// parseC adds the C harness's rows to s (as Shape/c-alloc) and returns
// its allocator line.
func parseC(out []byte, s sample) (allocator string, err error) {
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, " allocator: ") {
			allocator = line
			continue
		}
		m := cLineRE.FindStringSubmatch(line)
		if m == nil {
			return "", fmt.Errorf("unexpected C harness line %q", line)
		}
		shape, ok := cShapeOf[m[2]]
		if !ok {
			return "", fmt.Errorf("unknown C benchmark %q", m[2])
		}
		name := shape + "/c-" + m[1]
		if m[2] == "handoff" {
			name += "-handoff"
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return "", err
		}
		s[name] = v
	}
	if allocator == "" {
		return "", fmt.Errorf("no allocator line in the C harness output:\n%s", out)
	}
	return allocator, nil
}

type ratio struct{ a, b string }

func parseRatios(spec string) []ratio {
	var rs []ratio
	for _, p := range strings.Split(spec, ",") {
		if a, b, ok := strings.Cut(strings.TrimSpace(p), ":"); ok {
			rs = append(rs, ratio{a, b})
		}
	}
	return rs
}

// shapeOf returns the shape (the first element) of a row name; the floors
// are shape Pair64.
func shapeOf(row string) string {
	shape, _, _ := strings.Cut(row, "/")
	if strings.HasPrefix(shape, "LIFOFloor") {
		return "Pair64"
	}
	return shape
}

// median returns the median of vs (the mean of the middle two for an even
// count), and NaN-free zero for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	sort.Float64s(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// ratioSeries returns a/b for every round that has both rows.
func ratioSeries(samples []sample, a, b string) []float64 {
	var rs []float64
	for _, s := range samples {
		va, okA := s[a]
		vb, okB := s[b]
		if okA && okB && vb > 0 {
			rs = append(rs, va/vb)
		}
	}
	return rs
}

// rowOrder sorts rows by shape (Pair64, Pair64Parallel, Bulk64, CrossP64,
// others), Go rows before C rows, floors last within Pair64.
func rowOrder(rows []string) {
	shapeRank := map[string]int{"Pair64": 0, "Pair64Parallel": 1, "Bulk64": 2, "CrossP64": 3}
	rank := func(r string) (int, int) {
		sr, ok := shapeRank[shapeOf(r)]
		if !ok {
			sr = 4
		}
		kind := 0
		switch {
		case strings.Contains(r, "/c-"):
			kind = 1
		case strings.HasPrefix(r, "LIFOFloor"):
			kind = 2
		}
		return sr, kind
	}
	sort.SliceStable(rows, func(i, j int) bool {
		si, ki := rank(rows[i])
		sj, kj := rank(rows[j])
		if si != sj {
			return si < sj
		}
		if ki != kj {
			return ki < kj
		}
		return rows[i] < rows[j]
	})
}

// report prints the per-row table and the ratios (markdown).
func report(w io.Writer, samples []sample, ref string, extra []ratio) {
	seen := map[string]bool{}
	var rows []string
	for _, s := range samples {
		for r := range s {
			if !seen[r] {
				seen[r] = true
				rows = append(rows, r)
			}
		}
	}
	rowOrder(rows)
	refPair := "Pair64/" + ref
	fmt.Fprintf(w, "ns per alloc+free pair of a 64-byte object (bulk: per object); median of %d rounds;\n", len(samples))
	fmt.Fprintf(w, "ratios: median of the per-round ratios\n\n")
	fmt.Fprintf(w, "| row | median ns | min | max | n | / %s same shape | / %s |\n", ref, refPair)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		var vs []float64
		for _, s := range samples {
			if v, ok := s[r]; ok {
				vs = append(vs, v)
			}
		}
		same := shapeOf(r) + "/" + ref
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %s | %s |\n", r, num(median(vs)), num(slices.Min(vs)), num(slices.Max(vs)), len(vs),
			ratioCell(samples, r, same), ratioCell(samples, r, refPair))
	}
	if len(extra) > 0 {
		fmt.Fprintf(w, "\n| ratio | median | min | max | rounds |\n|---|---|---|---|---|\n")
		for _, x := range extra {
			rs := ratioSeries(samples, x.a, x.b)
			if len(rs) == 0 {
				fmt.Fprintf(w, "| %s / %s | – | | | 0 |\n", x.a, x.b)
				continue
			}
			fmt.Fprintf(w, "| %s / %s | %.3f | %.3f | %.3f | %d |\n", x.a, x.b, median(rs), slices.Min(rs), slices.Max(rs), len(rs))
		}
	}
}

func ratioCell(samples []sample, a, b string) string {
	if a == b {
		return "1"
	}
	rs := ratioSeries(samples, a, b)
	if len(rs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", median(rs))
}

// num formats ns/op with three significant digits.
func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
