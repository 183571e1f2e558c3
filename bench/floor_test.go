package bench

import "testing"

// BenchmarkLIFOFloor is not an allocator: it is the floor under any
// sheaf-style pair on this machine, an inlined pop, a one-byte write and a
// push on a plain Go array stack, with nothing validated and no P looked
// up. Each iteration's pop reads the count and slot the previous push
// wrote, so it costs two store-to-load forwards on the critical path.
// Read the hotslab-sheaf row against it.
func BenchmarkLIFOFloor(b *testing.B) {
	var s struct {
		n    int
		objs []int // offsets of the "objects" in buf
	}
	buf := make([]byte, 64*objSize)
	s.objs = make([]int, 128)
	for i := range 64 {
		s.objs[i] = i * objSize
	}
	s.n = 64
	for b.Loop() {
		s.n--
		p := s.objs[s.n]
		buf[p] = 1
		s.objs[s.n] = p
		s.n++
	}
}

// lifo is BenchmarkLIFOFloorCalls's stack: a count and an array on the
// heap, as an allocator's per-P or per-goroutine cache is.
type lifo struct {
	n    int
	objs []int
}

//go:noinline
func (s *lifo) pop() int {
	if s.n == 0 {
		return -1
	}
	s.n--
	return s.objs[s.n]
}

//go:noinline
func (s *lifo) push(p int) bool {
	if s.n >= len(s.objs) {
		return false
	}
	s.objs[s.n] = p
	s.n++
	return true
}

// BenchmarkLIFOFloorCalls is BenchmarkLIFOFloor with the pop and the push
// behind calls that are not inlined, on a stack on the heap: the floor
// under any allocator whose alloc and free are calls (hotslab-sheaf's
// Free is one; its Alloc is inlined), still with nothing validated.
func BenchmarkLIFOFloorCalls(b *testing.B) {
	buf := make([]byte, 64*objSize)
	s := &lifo{objs: make([]int, 128)}
	for i := range 64 {
		s.objs[i] = i * objSize
	}
	s.n = 64
	for b.Loop() {
		p := s.pop()
		buf[p] = 1
		s.push(p)
	}
}
