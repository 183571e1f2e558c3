package bench

// Peer (non-hotslab) rows of the side-by-side benchmarks. The registries
// and top-level Benchmark functions live in registry_test.go; hotslab rows
// are registered the same way from hotslab_test.go.
//
// Peers:
//   - syncpool:  a sync.Pool of *[64]byte (Get/Put), warmed before timing.
//   - heap:      new([64]byte), kept alive through a package-level sink so
//                it cannot be stack-allocated; "free" is dropping the
//                reference (the GC reclaims it, and its cost is included
//                in the steady-state numbers).
//   - mutexlist: a sync.Mutex-protected free list (stack) of preallocated
//                [64]byte objects.

import (
	"sync"
	"sync/atomic"
	"testing"
)

func init() {
	registerPair("syncpool", benchPairSyncPool)
	registerPair("heap", benchPairHeap)
	registerPair("mutexlist", benchPairMutexList)

	registerPairParallel("syncpool", benchPairParallelSyncPool)
	registerPairParallel("heap", benchPairParallelHeap)
	registerPairParallel("mutexlist", benchPairParallelMutexList)

	registerBulk("syncpool", benchBulkSyncPool)
	registerBulk("heap", benchBulkHeap)
	registerBulk("mutexlist", benchBulkMutexList)

	registerCrossP("handoff", benchCrossHandoff)
	registerCrossP("syncpool", benchCrossSyncPool)
	registerCrossP("heap", benchCrossHeap)
	registerCrossP("mutexlist", benchCrossMutexList)

	registerGC("heap", populateHeap)
	registerGC("heap-array", populateHeapArray)
	registerGC("empty", populateEmpty)
}

// ---- sinks: keep results observable so nothing is optimised away ----

var (
	heapSink  *obj64
	bulkSink  [bulkN]*obj64
	byteSink  atomic.Uint32
	sinkSlots [64]struct {
		p *obj64
		_ [56]byte // one cache line per goroutine: no false sharing
	}
	sinkNext atomic.Uint32
)

// parallelSink returns a per-goroutine sink slot (package-level, so what is
// stored there escapes to the heap).
func parallelSink() **obj64 {
	return &sinkSlots[sinkNext.Add(1)%uint32(len(sinkSlots))].p
}

// ---- sync.Pool ----

func newPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new(obj64) }}
}

// warmPool puts n fresh objects into p so that the timed loop does not
// measure New.
func warmPool(p *sync.Pool, n int) {
	objs := make([]*obj64, n)
	for i := range objs {
		objs[i] = p.Get().(*obj64)
	}
	for _, o := range objs {
		p.Put(o)
	}
}

func benchPairSyncPool(b *testing.B) {
	p := newPool()
	warmPool(p, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := p.Get().(*obj64)
		o[0] = byte(i)
		p.Put(o)
	}
}

func benchPairParallelSyncPool(b *testing.B) {
	p := newPool()
	warmPool(p, 16*bulkN)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o := p.Get().(*obj64)
			o[0] = byte(i)
			p.Put(o)
			i++
		}
	})
}

func benchBulkSyncPool(b *testing.B) {
	p := newPool()
	warmPool(p, 2*bulkN)
	var objs [bulkN]*obj64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range objs {
			o := p.Get().(*obj64)
			o[0] = byte(j)
			objs[j] = o
		}
		for j, o := range objs {
			p.Put(o)
			objs[j] = nil
		}
	}
}

func benchCrossSyncPool(b *testing.B) {
	p := newPool()
	warmPool(p, 2*crossRingSize)
	b.ReportAllocs()
	runCrossP(b,
		func(i int) *obj64 {
			o := p.Get().(*obj64)
			o[0] = byte(i)
			return o
		},
		func(o *obj64) { p.Put(o) })
}

// ---- Go heap ----

func benchPairHeap(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o := new(obj64)
		o[0] = byte(i)
		heapSink = o
	}
	heapSink = nil
}

func benchPairParallelHeap(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		sink := parallelSink()
		i := 0
		for pb.Next() {
			o := new(obj64)
			o[0] = byte(i)
			*sink = o
			i++
		}
		*sink = nil
	})
}

func benchBulkHeap(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for j := range bulkSink {
			o := new(obj64)
			o[0] = byte(j)
			bulkSink[j] = o
		}
		clear(bulkSink[:]) // "free": drop the references
	}
}

func benchCrossHeap(b *testing.B) {
	b.ReportAllocs()
	runCrossP(b,
		func(i int) *obj64 {
			o := new(obj64)
			o[0] = byte(i)
			return o
		},
		func(o *obj64) { byteSink.Add(uint32(o[0])) })
}

// ---- handoff: cost of the CrossP transport alone ----

func benchCrossHandoff(b *testing.B) {
	objs := make([]obj64, 4*crossRingSize) // > ring size: never reused in flight
	runCrossP(b,
		func(i int) *obj64 {
			o := &objs[i%len(objs)]
			o[0] = byte(i)
			return o
		},
		func(o *obj64) { byteSink.Add(uint32(o[1])) })
}

// ---- mutex-protected free list ----

// mutexList is a free list (LIFO stack) of preallocated objects protected
// by one sync.Mutex: the classic "lock around a free list" allocator.
type mutexList struct {
	mu   sync.Mutex
	free []*obj64
}

func newMutexList(n int) *mutexList {
	backing := make([]obj64, n)
	l := &mutexList{free: make([]*obj64, n)}
	for i := range backing {
		l.free[i] = &backing[i]
	}
	return l
}

func (l *mutexList) alloc() *obj64 {
	l.mu.Lock()
	n := len(l.free)
	if n == 0 {
		l.mu.Unlock()
		return new(obj64) // exhausted: grow from the heap
	}
	o := l.free[n-1]
	l.free = l.free[:n-1]
	l.mu.Unlock()
	return o
}

func (l *mutexList) release(o *obj64) {
	l.mu.Lock()
	l.free = append(l.free, o)
	l.mu.Unlock()
}

// allocBulk fills dst under a single lock acquisition.
func (l *mutexList) allocBulk(dst []*obj64) {
	l.mu.Lock()
	n := len(l.free)
	k := min(n, len(dst))
	copy(dst, l.free[n-k:])
	l.free = l.free[:n-k]
	l.mu.Unlock()
	for i := k; i < len(dst); i++ {
		dst[i] = new(obj64)
	}
}

// releaseBulk returns all of src under a single lock acquisition.
func (l *mutexList) releaseBulk(src []*obj64) {
	l.mu.Lock()
	l.free = append(l.free, src...)
	l.mu.Unlock()
}

func benchPairMutexList(b *testing.B) {
	l := newMutexList(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := l.alloc()
		o[0] = byte(i)
		l.release(o)
	}
}

func benchPairParallelMutexList(b *testing.B) {
	l := newMutexList(4096)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o := l.alloc()
			o[0] = byte(i)
			l.release(o)
			i++
		}
	})
}

func benchBulkMutexList(b *testing.B) {
	l := newMutexList(4 * bulkN)
	var objs [bulkN]*obj64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.allocBulk(objs[:])
		for j, o := range objs {
			o[0] = byte(j)
		}
		l.releaseBulk(objs[:])
	}
}

func benchCrossMutexList(b *testing.B) {
	l := newMutexList(4 * crossRingSize)
	b.ReportAllocs()
	runCrossP(b,
		func(i int) *obj64 {
			o := l.alloc()
			o[0] = byte(i)
			return o
		},
		l.release)
}

// ---- BenchmarkGC10M populations ----

// populateHeap makes n separate 64-byte Go-heap objects, referenced from
// a []*obj64 that the release closure keeps reachable.
func populateHeap(n int) func() {
	objs := make([]*obj64, n)
	for i := range objs {
		o := new(obj64)
		o[0] = byte(i)
		objs[i] = o
	}
	return func() { clear(objs) }
}

// populateHeapArray makes the same bytes as one big pointer-free Go array
// (a single noscan object): what the GC sees if objects were carved out
// of one arena. For reference only.
func populateHeapArray(n int) func() {
	objs := make([]obj64, n)
	for i := range objs {
		objs[i][0] = byte(i)
	}
	return func() { byteSink.Add(uint32(objs[0][0])) }
}

func populateEmpty(int) func() { return func() {} }
