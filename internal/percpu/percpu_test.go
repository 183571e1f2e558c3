package percpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// Nothing in a pinned section below blocks, allocates, locks or calls into
// testing: results are kept in locals or atomics and checked after Unpin.

// sink keeps spin's result alive.
var sink atomic.Uint64

// spin does n steps of work that touch no memory, so a pinned section can
// last a while without blocking or allocating. It is a call (not inlined),
// so loads before it and stores after it stay where they are written.
//
//go:noinline
func spin(n int) uint64 {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// setProcs sets GOMAXPROCS to n for the rest of the test.
func setProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

func TestPinNests(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	outer := Pin()
	inner := Pin()
	Unpin()
	again := Pin() // the outer pin still holds: same P
	Unpin()
	Unpin()
	if outer != inner || inner != again {
		t.Fatalf("nested pins on Ps %d, %d, %d; want one P", outer, inner, again)
	}
	if outer < 0 || outer >= procs {
		t.Fatalf("P id %d outside [0, %d)", outer, procs)
	}
	// Balanced: the goroutine is unpinned, else stopping the world from it
	// would throw "stopTheWorld: holding locks".
	Synchronize()
}

// pinIDs pins from g goroutines, n times each, and returns the smallest
// and largest P id seen and whether any goroutine saw its P change within
// one pinned section (a nested Pin at the end of the section reports the
// P the goroutine runs on then).
func pinIDs(g, n int) (lo, hi int, moved bool) {
	const none = int(^uint(0) >> 1)
	var mu sync.Mutex
	lo, hi = none, -1
	var wg sync.WaitGroup
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			glo, ghi, gmoved := none, -1, false
			for range n {
				id := Pin()
				sink.Add(spin(64))
				now := Pin()
				Unpin()
				Unpin()
				glo, ghi = min(glo, id), max(ghi, id)
				gmoved = gmoved || now != id
			}
			mu.Lock()
			lo, hi, moved = min(lo, glo), max(hi, ghi), moved || gmoved
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lo, hi, moved
}

func TestPinIDRange(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	lo, hi, moved := pinIDs(4*procs, 2000)
	if lo < 0 || hi >= procs {
		t.Fatalf("P ids in [%d, %d], want within [0, %d)", lo, hi, procs)
	}
	if moved {
		t.Fatal("a goroutine changed P inside a pinned section")
	}
}

// padded is a per-P slot on its own cache line.
type padded struct {
	n int64
	_ [CacheLine - 8]byte
}

// While pinned a goroutine owns its P's slot: many goroutines, each
// incrementing its P's slot with a plain read-modify-write stretched over
// some work, lose no increment, and each stays on its P to the end of the
// section. Two goroutines pinned with one id at once would lose
// increments; under -race they are plain accesses that the detector
// checks, made visible to it only by happens-before annotations on the
// slot that are exactly as strong as the pinning (raceAcquire at the start
// of the pinned section, raceReleaseMerge at its end), so an overlap of two
// pinned sections on one slot is reported as a race. Stop-the-world
// requests (a Synchronize loop) keep trying to preempt every goroutine, in
// the middle of its section too.
func TestPinOwnsSlot(t *testing.T) {
	setProcs(t, max(4, runtime.NumCPU()))
	procs := runtime.GOMAXPROCS(0)
	slots := make([]padded, procs)
	g, n := 4*procs, 4000
	if testing.Short() {
		n = 1000
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				Synchronize()
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	var outside, moved atomic.Int64
	var wg sync.WaitGroup
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				id := Pin()
				if uint(id) >= uint(len(slots)) {
					Unpin()
					outside.Add(1)
					continue
				}
				s := &slots[id]
				raceAcquire(unsafe.Pointer(s))
				v := s.n
				sink.Add(spin(1000))
				s.n = v + 1
				raceReleaseMerge(unsafe.Pointer(s))
				now := Pin()
				Unpin()
				Unpin()
				if now != id {
					moved.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if k := outside.Load(); k != 0 {
		t.Fatalf("%d pins returned an id outside [0, %d)", k, procs)
	}
	if k := moved.Load(); k != 0 {
		t.Fatalf("%d pinned sections changed P", k)
	}
	var sum int64
	for i := range slots {
		sum += slots[i].n
	}
	if want := int64(g * n); sum != want {
		t.Fatalf("per-P slots sum to %d, want %d: two goroutines were pinned to one P at once", sum, want)
	}
}

// pinnedSection is the reader of the grace-period test. It pins (twice
// when nested, dropping the inner pin at once, so only the outer pin keeps
// it pinned), announces that it is pinned, waits for the synchronizer to be
// about to call Synchronize, works a while longer, sets finished and only
// then unpins. It never blocks: if the synchronizer cannot run (a
// stop-the-world is already waiting for this P), the wait gives up after a
// bounded number of steps; the test's verdict never depends on it, only
// its power to catch a Synchronize that does not wait.
func pinnedSection(nested bool, pinned, syncing, finished *atomic.Bool) {
	Pin()
	if nested {
		Pin()
		Unpin()
	}
	pinned.Store(true)
	for i := 0; i < 1<<24 && !syncing.Load(); i++ {
	}
	sink.Add(spin(1 << 17))
	finished.Store(true)
	Unpin()
}

// Synchronize is a grace period: a goroutine pinned before Synchronize is
// called has unpinned by the time it returns, so everything it did while
// pinned is visible.
func TestSynchronizeWaitsForPinned(t *testing.T) {
	setProcs(t, max(2, runtime.GOMAXPROCS(0))) // the pinned goroutine and the synchronizer run at once
	rounds := 100
	if testing.Short() {
		rounds = 25
	}
	for _, nested := range []bool{false, true} {
		for r := range rounds {
			var pinned, syncing, finished atomic.Bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				pinnedSection(nested, &pinned, &syncing, &finished)
			}()
			for !pinned.Load() {
				runtime.Gosched()
			}
			syncing.Store(true)
			Synchronize()
			ok := finished.Load()
			<-done
			if !ok {
				t.Fatalf("nested=%v round %d: Synchronize returned while a goroutine pinned before the call was still pinned", nested, r)
			}
		}
	}
}

// Synchronize with nobody pinned, and from several goroutines at once,
// returns.
func TestSynchronizeConcurrent(t *testing.T) {
	Synchronize()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				Synchronize()
			}
		}()
	}
	wg.Wait()
}

// MaxProcs is the larger of GOMAXPROCS and the CPU count: a per-P array of
// that length, made at any GOMAXPROCS, has a slot for every P as long as
// GOMAXPROCS is not raised beyond the CPU count; beyond it, ids reach past
// the array (and stay below GOMAXPROCS).
func TestMaxProcs(t *testing.T) {
	ncpu := runtime.NumCPU()
	setProcs(t, runtime.GOMAXPROCS(0))
	for _, p := range []int{1, 2, ncpu, ncpu + 3} {
		runtime.GOMAXPROCS(p)
		if got, want := MaxProcs(), max(p, ncpu); got != want {
			t.Fatalf("GOMAXPROCS %d, %d CPUs: MaxProcs() = %d, want %d", p, ncpu, got, want)
		}
	}

	runtime.GOMAXPROCS(1)
	n := MaxProcs() // a per-P array made while GOMAXPROCS is 1
	runtime.GOMAXPROCS(ncpu)
	if lo, hi, _ := pinIDs(4*ncpu, 500); lo < 0 || hi >= n {
		t.Fatalf("GOMAXPROCS raised to the CPU count: P ids in [%d, %d], want within [0, %d)", lo, hi, n)
	}

	runtime.GOMAXPROCS(ncpu + 3)
	if lo, hi, _ := pinIDs(4*(ncpu+3), 500); lo < 0 || hi >= ncpu+3 {
		t.Fatalf("GOMAXPROCS %d: P ids in [%d, %d]", ncpu+3, lo, hi)
	}
}

func BenchmarkPinUnpin(b *testing.B) {
	for b.Loop() {
		Pin()
		Unpin()
	}
}
