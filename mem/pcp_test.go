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

// TestRefillSkipsIsolated: a refill that took pages off the free lists
// before their block was isolated does not push them on a per-P list after
// Offline's drains (they would sit there, neither free nor allocated, and
// the offline would wait for them): pcpPush refuses them, and the caller
// frees them into the isolated block. Driven step by step, as Offline and
// allocFromZonelist would interleave.
func TestRefillSkipsIsolated(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, InitialPerNode: 1 << 20})
	z := &s.zones[int(ZoneNormal)]
	var buf [4]uintptr
	z.lock.Lock()
	for i := range buf {
		buf[i], _ = s.rmqueue(z, 0, mkState(pgPcp, 0, 0))
	}
	z.lock.Unlock()
	b := s.blocks[s.BlockOf(buf[0])].Load()
	// Offline's drain, isolate, drain.
	s.drainAllPages()
	z.lock.Lock()
	s.isolate(z, b)
	z.lock.Unlock()
	s.drainAllPages()
	left := s.pcpPush(z, buf[:])
	if left != len(buf) {
		t.Errorf("pcpPush took %d pages of an isolated block", len(buf)-left)
	}
	s.freeBatch(z, buf[:left])
	if pz, _, _ := s.pcpCounts(); pz[z.idx] != 0 {
		t.Errorf("%d pages on per-P lists", pz[z.idx])
	}
	if n := b.nrFree.Load(); n != int64(s.pagesPerBlock) {
		t.Errorf("isolated block: %d of %d pages free", n, s.pagesPerBlock)
	}
	z.lock.Lock()
	s.unisolate(z, b)
	z.lock.Unlock()
	checkFree(t, s)
}
