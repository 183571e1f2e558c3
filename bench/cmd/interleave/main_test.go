package main

import (
	"strings"
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }

func TestParse(t *testing.T) {
	s := sample{}
	goOut := `goos: linux
BenchmarkPair64/hotslab-2         	100	         6.10 ns/op	       0 B/op	       0 allocs/op
BenchmarkBulk64/hotslab-2         	100	        80.00 ns/batch	         1.25 ns/op	       0 B/op
BenchmarkLIFOFloor                	100	         1.50 ns/op
PASS
`
	if err := parseGo([]byte(goOut), s); err != nil {
		t.Fatal(err)
	}
	cOut := `c/jemalloc allocator: jemalloc 5.3.0 (x)
c/jemalloc pair64 ns/op=3.90 min=3.90 max=3.90 reps=1
c/jemalloc pair64-parallel threads=2 ns/op=1.96 min=1.96 max=1.96 reps=1
c/jemalloc handoff ns/op=6.10 min=6.10 max=6.10 reps=1
`
	alloc, err := parseC([]byte(cOut), s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(alloc, "c/jemalloc allocator:") {
		t.Errorf("allocator line %q", alloc)
	}
	want := sample{
		"Pair64/hotslab": 6.10, "Bulk64/hotslab": 1.25, "LIFOFloor": 1.50,
		"Pair64/c-jemalloc": 3.90, "Pair64Parallel/c-jemalloc": 1.96, "CrossP64/c-jemalloc-handoff": 6.10,
	}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
	if len(s) != len(want) {
		t.Errorf("rows %v, want %v", s, want)
	}
}

func TestMedianAndRatios(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	samples := []sample{{"a": 2, "b": 1}, {"a": 3, "b": 1}, {"a": 10}, {"a": 8, "b": 2}}
	rs := ratioSeries(samples, "a", "b")
	if len(rs) != 3 || median(rs) != 3 {
		t.Errorf("ratioSeries = %v (median %v), want [2 3 4] (3)", rs, median(rs))
	}
	if shapeOf("LIFOFloorCalls") != "Pair64" || shapeOf("Bulk64/heap") != "Bulk64" {
		t.Error("shapeOf")
	}
	rows := []string{"Pair64/c-glibc", "LIFOFloor", "Bulk64/hotslab", "Pair64/syncpool", "Pair64/hotslab"}
	rowOrder(rows)
	if got := strings.Join(rows, " "); got != "Pair64/hotslab Pair64/syncpool Pair64/c-glibc LIFOFloor Bulk64/hotslab" {
		t.Errorf("rowOrder = %s", got)
	}
	var b strings.Builder
	report(&b, samples, "c-jemalloc", parseRatios("a:b"))
	if !strings.Contains(b.String(), "| a / b | 3.000 |") {
		t.Errorf("report:\n%s", b.String())
	}
}
