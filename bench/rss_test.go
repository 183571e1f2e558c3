package bench

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
)

// rssBytes returns the current resident set size of this process in bytes
// (resident pages from /proc/self/statm times the page size), or -1 if it
// cannot be read (non-Linux). It includes off-heap (mmap'ed) memory, so it
// is the number to compare hotslab against the Go heap with.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// peakRSSBytes returns the peak resident set size (VmHWM from
// /proc/self/status) in bytes, or -1 if it cannot be read.
func peakRSSBytes() int64 {
	return procStatusKB("VmHWM:")
}

// procStatusKB returns the value of a "kB" field of /proc/self/status in
// bytes, or -1.
func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte(field))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // e.g. ["12345", "kB"]
		if len(f) == 0 {
			return -1
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return -1
		}
		return kb << 10
	}
	return -1
}

var rssTestSink []byte

func TestRSSBytes(t *testing.T) {
	// A run before this one (-count) may have left resident heap pages
	// the new allocation would reuse without faulting: give them back.
	runtime.GC()
	debug.FreeOSMemory()
	before := rssBytes()
	if before <= 0 {
		t.Skipf("rssBytes unavailable (%d)", before)
	}
	if vm := procStatusKB("VmRSS:"); vm > 0 {
		// statm and status are sampled at different instants; only
		// check they agree roughly.
		if d := vm - before; d > 64<<20 || d < -64<<20 {
			t.Errorf("statm RSS %d and VmRSS %d disagree", before, vm)
		}
	}
	const n = 64 << 20
	rssTestSink = make([]byte, n)
	for i := 0; i < n; i += os.Getpagesize() {
		rssTestSink[i] = 1 // fault every page in
	}
	after := rssBytes()
	rssTestSink = nil
	if after-before < n/2 {
		t.Errorf("RSS grew by %d bytes after touching %d bytes", after-before, n)
	}
	if p := peakRSSBytes(); p < after {
		t.Errorf("peak RSS %d < current RSS %d", p, after)
	}
}
