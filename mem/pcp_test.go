//go:build linux

// Tests of the per-P page lists' layout.

package mem

import (
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

// TestPerPLayout: every P's perP starts on its own cache line, and no two
// Ps' lists share a line (the padding's and the comments' premise).
func TestPerPLayout(t *testing.T) {
	s := newTest(t, Config{})
	if a := uintptr(unsafe.Pointer(&s.pcp[0])); a%percpu.CacheLine != 0 {
		t.Errorf("System.pcp at %#x: not on a cache line", a)
	}
	type span struct{ lo, hi uintptr } // first and last line
	var spans []span
	for i := range s.pcp {
		l := s.pcp[i].lists
		lo := uintptr(unsafe.Pointer(&l[0]))
		hi := lo + uintptr(len(l))*unsafe.Sizeof(l[0]) - 1
		spans = append(spans, span{lo / percpu.CacheLine, hi / percpu.CacheLine})
	}
	for i, a := range spans {
		for j, b := range spans[:i] {
			if a.lo <= b.hi && b.lo <= a.hi {
				t.Errorf("P %d's and P %d's lists share a cache line", i, j)
			}
		}
	}
}
