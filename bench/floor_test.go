package bench

import "testing"

// lifo is the floors' stack: a count and an array of object offsets, on
// the heap, as an allocator's per-P sheaf or a prefilled Sheaf is. pop
// and push are Sheaf.Alloc and Sheaf.Free without the validation.
type lifo struct {
	n    int
	objs []int // offsets of the "objects" in the floors' buffer
}

func newLIFO() *lifo {
	s := &lifo{objs: make([]int, 128)}
	for i := range 64 {
		s.objs[i] = i * objSize
	}
	s.n = 64
	return s
}

func (s *lifo) pop() int {
	n := s.n - 1
	if n < 0 {
		return -1
	}
	s.n = n
	return s.objs[n]
}

func (s *lifo) push(p int) bool {
	n := s.n
	if n >= len(s.objs) {
		return false
	}
	s.objs[n] = p
	s.n = n + 1
	return true
}

//go:noinline
func (s *lifo) popCall() int { return s.pop() }

//go:noinline
func (s *lifo) pushCall(p int) bool { return s.push(p) }

// lifoSink and lifoBuf keep the floors' stack and objects reachable from
// globals, so that they live on the heap: the count and slots are memory,
// as an allocator's are, and the one-byte writes cannot be dropped as
// dead stores into a buffer nobody reads.
var (
	lifoSink *lifo
	lifoBuf  []byte
)

// BenchmarkLIFOFloor is not an allocator: it is the floor under any
// sheaf-style pair on this machine, an inlined pop, a one-byte write and
// a push on an array stack, with nothing validated and no P looked up.
// The stack is on the heap, as an allocator's per-P sheaf or a prefilled
// Sheaf is, so its count and slots are memory: each iteration's pop reads
// the count and slot the previous push wrote (store-to-load forwards on
// the critical path), as a real allocator's must, since its stack
// outlives any one loop. pop and push are Sheaf.Alloc and Sheaf.Free
// minus the validation, with their empty and full checks.
//
// The loop is a plain b.N loop, like every row (registry_test.go). Go
// 1.26, amd64, checked with
//
//	go test -c -o /tmp/b.test ./bench/ && go tool objdump -s 'BenchmarkLIFOFloor$' /tmp/b.test
//
// the loop body is 26 instructions, 8 loads and 4 stores:
//
//	loop (4)   INCQ i; CMPQ b.N(b), i (a load); JLE out; JMP top
//	pop (10)   MOVQ s.n → n; LEAQ -1(n); TESTQ; JGE (empty check);
//	           MOVQ n-1 → s.n; MOVQ len(s.objs); CMPQ; JBE (bounds);
//	           MOVQ s.objs base; MOVQ slot → p
//	write (3)  CMPQ p, $len(buf); JAE (bounds); MOVB i → buf[p]
//	push (9)   MOVQ s.n (reloaded: the byte store might alias it);
//	           MOVQ len(s.objs); CMPQ; JLE (full check); JBE (bounds);
//	           MOVQ s.objs base; MOVQ p → slot; LEAQ 1(n); MOVQ → s.n
//
// The same code on a stack in local variables is not a floor: the
// compiler keeps the count in a register, sees the pop and push cancel,
// and leaves a one-byte store and a store of a constant slot, 8
// instructions (~0.4 ns here). The old b.Loop form of this benchmark
// kept every variable of its loop body in memory instead (the stack's
// count and slice header, p, buf's header: about two dozen instructions
// and a store-to-load forward for every variable), and so did the hotslab
// rows, while the peer rows ran plain b.N loops.
func BenchmarkLIFOFloor(b *testing.B) {
	buf := make([]byte, 64*objSize)
	s := newLIFO()
	lifoSink, lifoBuf = s, buf
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := s.pop()
		buf[p] = byte(i)
		s.push(p)
	}
}

// BenchmarkLIFOFloorCalls is BenchmarkLIFOFloor with the pop and the push
// behind calls that are not inlined: the floor under any allocator whose
// alloc and free are calls (Cache.Alloc and Cache.Free; a Magazine's or
// Sheaf's Free), still with nothing validated.
//
// Checked as BenchmarkLIFOFloor's (objdump -s
// 'BenchmarkLIFOFloorCalls$|lifo\).(pop|push)Call$'): 46 instructions per
// iteration, 16 in the loop and 15 in each call. The loop keeps nothing
// in registers across a call (Go's ABI has no callee-saved registers): it
// reloads s for each call and buf for the write, and spills and reloads
// i, besides the CALLs and the b.N test. Each callee is PUSHQ BP; MOVQ
// SP, BP; the body of BenchmarkLIFOFloor's pop or push (the result moved
// to AX, or SETG for push's bool); POPQ BP; RET.
func BenchmarkLIFOFloorCalls(b *testing.B) {
	buf := make([]byte, 64*objSize)
	s := newLIFO()
	lifoSink, lifoBuf = s, buf
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := s.popCall()
		buf[p] = byte(i)
		s.pushCall(p)
	}
}
