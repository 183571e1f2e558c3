package bench

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// crossRingSize is the capacity of the producer->consumer ring used by
// runCrossP; it bounds the number of objects in flight.
const crossRingSize = 256

// crossPublish is how many objects the producer writes before publishing
// them to the consumer (one atomic store per crossPublish objects).
const crossPublish = 16

// cacheLinePad separates the producer's and consumer's indices.
type cacheLinePad [64]byte

// spscRing is a bounded single-producer/single-consumer queue.
type spscRing[T any] struct {
	_    cacheLinePad
	tail atomic.Uint64 // written by the producer only
	_    cacheLinePad
	head atomic.Uint64 // written by the consumer only
	_    cacheLinePad
	buf  [crossRingSize]T
}

// spinWait yields the processor after a short busy spin.
func spinWait(spins *int) {
	*spins++
	if *spins > 64 {
		runtime.Gosched()
		*spins = 0
	}
}

// runCrossP is the shared driver for BenchmarkCrossP64 rows: b.N times it
// calls alloc(i) on the benchmark goroutine and hands the result through an
// SPSC ring to a second goroutine, which calls free on it. The producer
// publishes objects in groups of crossPublish, so remote frees arrive in
// small batches, as they would from a real consumer draining a queue. The timer covers
// everything up to the consumer having freed all b.N objects, so ns/op is
// per object. alloc and free are called through func values, which costs
// the same for every row; compare rows against the "handoff" row to see
// the allocator's own share.
//
// Do untimed setup (warm-up) before calling runCrossP; it resets the timer.
func runCrossP[T any](b *testing.B, alloc func(i int) T, free func(T)) {
	r := new(spscRing[T])
	n := uint64(b.N)
	done := make(chan struct{})
	b.ResetTimer()
	go func() {
		defer close(done)
		var h uint64
		spins := 0
		for h < n {
			t := r.tail.Load()
			if h == t {
				spinWait(&spins)
				continue
			}
			for ; h < t; h++ {
				// Slots are not cleared: stale copies keep at most
				// crossRingSize objects reachable, which is harmless,
				// and clearing would add a write to shared lines.
				free(r.buf[h%crossRingSize])
			}
			r.head.Store(h)
		}
	}()
	spins := 0
	var head uint64 // producer's cached copy of r.head
	for t := uint64(0); t < n; t++ {
		v := alloc(int(t))
		for t-head >= crossRingSize {
			r.tail.Store(t) // publish before waiting
			head = r.head.Load()
			if t-head >= crossRingSize {
				spinWait(&spins)
			}
		}
		r.buf[t%crossRingSize] = v
		if (t+1)%crossPublish == 0 {
			r.tail.Store(t + 1)
		}
	}
	r.tail.Store(n)
	<-done
	b.StopTimer()
}
