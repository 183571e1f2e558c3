package bench

import (
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// benchMetric is one "value unit" pair of a benchmark result line.
type benchMetric struct {
	value float64
	unit  string
}

// benchChildPattern returns the -test.bench pattern that selects exactly
// the benchmark b.Name() names ("BenchmarkX/row/sub" →
// "^BenchmarkX$/^row$/^sub$").
func benchChildPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// runBenchChild runs benchmark name (a full b.Name(), e.g.
// "BenchmarkGC10M/heap") in a child process: this test binary re-executed
// with -test.bench selecting just that benchmark, -test.run=^$,
// -test.count=1, the parent's GOMAXPROCS and -short, env added to its
// environment, and args. It returns the metrics of the child's result
// line (after the iteration count), in order.
func runBenchChild(b *testing.B, name, env string, args ...string) []benchMetric {
	all := []string{
		"-test.run=^$",
		"-test.bench=" + benchChildPattern(name),
		"-test.count=1",
		"-test.cpu=" + strconv.Itoa(runtime.GOMAXPROCS(0)),
	}
	if testing.Short() {
		all = append(all, "-test.short")
	}
	all = append(all, args...)
	cmd := exec.Command(os.Args[0], all...)
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child %v: %v\n%s", all, err, out)
	}
	var ms []benchMetric
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !isResultFor(f[0], name) {
			if strings.Contains(line, "residue") || strings.Contains(line, "SKIP") ||
				strings.Contains(line, "_test.go:") {
				b.Log(strings.TrimSpace(line))
			}
			continue
		}
		if found {
			b.Fatalf("two results for %s in child output:\n%s", name, out)
		}
		found = true
		for i := 2; i+1 < len(f); i += 2 { // f[1] is the child's b.N
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				b.Fatalf("bad child output %q", line)
			}
			ms = append(ms, benchMetric{v, f[i+1]})
		}
	}
	if !found {
		b.Fatalf("no result for %s in child output:\n%s", name, out)
	}
	return ms
}

// isResultFor reports whether field is the name column of benchmark
// name's result line: the name, followed by "-GOMAXPROCS" unless that is 1.
func isResultFor(field, name string) bool {
	rest, ok := strings.CutPrefix(field, name)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	_, err := strconv.Atoi(strings.TrimPrefix(rest, "-"))
	return strings.HasPrefix(rest, "-") && err == nil
}

func TestBenchChildPattern(t *testing.T) {
	if got, want := benchChildPattern("BenchmarkRSS/heap/size=64"), `^BenchmarkRSS$/^heap$/^size=64$`; got != want {
		t.Errorf("benchChildPattern = %q, want %q", got, want)
	}
	for _, c := range []struct {
		field string
		want  bool
	}{
		{"BenchmarkGC10M/heap-2", true},
		{"BenchmarkGC10M/heap", true},
		{"BenchmarkGC10M/heap-array-2", false},
		{"BenchmarkGC10M/hea", false},
	} {
		if got := isResultFor(c.field, "BenchmarkGC10M/heap"); got != c.want {
			t.Errorf("isResultFor(%q) = %v, want %v", c.field, got, c.want)
		}
	}
}
