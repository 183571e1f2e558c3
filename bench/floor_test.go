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
