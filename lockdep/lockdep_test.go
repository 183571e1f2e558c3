package lockdep

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type caught struct{ r Report }

// setup gives the test a clean validator whose reports panic out of the
// acquisition that caused them (before it could block), so a test can
// provoke a real deadlock without hanging. The cleanup restores the handler
// and the continue-after-report setting and resets the validator (which
// forgets the test's reports and held stacks), so nothing leaks into the
// next test.
func setup(t *testing.T) {
	t.Helper()
	Reset()
	cont := continueAfterReport.Load()
	SetContinueAfterReport(false)
	old := SetHandler(func(r Report) { panic(caught{r}) })
	t.Cleanup(func() {
		SetHandler(old)
		SetContinueAfterReport(cont)
		Reset()
	})
}

// catch runs f and returns the report it raised, or nil.
func catch(f func()) (rep *Report) {
	defer func() {
		if v := recover(); v != nil {
			c, ok := v.(caught)
			if !ok {
				panic(v)
			}
			rep = &c.r
		}
	}()
	f()
	return nil
}

func expect(t *testing.T, want ReportKind, f func()) *Report {
	t.Helper()
	r := catch(f)
	if r == nil {
		t.Fatalf("expected %q, got no report", want)
	}
	if r.Kind != want {
		t.Fatalf("expected %q, got %q:\n%s", want, r.Kind, r.Text)
	}
	if !strings.Contains(r.Text, want.String()) {
		t.Fatalf("report lacks banner %q:\n%s", want, r.Text)
	}
	return r
}

func expectNone(t *testing.T, f func()) {
	t.Helper()
	if r := catch(f); r != nil {
		t.Fatalf("unexpected report:\n%s", r.Text)
	}
}

func mutexes(names ...string) []*Mutex {
	ms := make([]*Mutex, len(names))
	for i, n := range names {
		ms[i] = NewMutex(NewClass(n))
	}
	return ms
}

// order takes the locks in order, then releases them.
func order(ms ...*Mutex) {
	for _, m := range ms {
		m.Lock()
	}
	for i := len(ms) - 1; i >= 0; i-- {
		ms[i].Unlock()
	}
}

func TestABBA(t *testing.T) {
	setup(t)
	m := mutexes("A", "B")
	a, b := m[0], m[1]
	expectNone(t, func() { order(a, b) })
	b.Lock()
	r := expect(t, Circular, func() { a.Lock() })
	b.Unlock()
	if r.Lock != "A" || r.Held != "B" {
		t.Fatalf("lock %q held %q, want A held B", r.Lock, r.Held)
	}
	for _, s := range []string{
		"is trying to acquire lock:", "but goroutine is already holding lock:",
		"the existing dependency chain (in reverse order) is:",
		"Possible unsafe locking scenario:", "*** DEADLOCK ***",
		"lock(B);", "lock(A);", "1 lock held by goroutine",
		"lockdep.TestABBA", // the Go stack that recorded A -> B
	} {
		if !strings.Contains(r.Text, s) {
			t.Errorf("report lacks %q:\n%s", s, r.Text)
		}
	}
	// The validator switched itself off after the report.
	if Enabled() {
		t.Fatal("validator still on after first report")
	}
}

func testCycle(t *testing.T, n int) {
	setup(t)
	names := make([]string, n)
	for i := range names {
		names[i] = string(rune('A' + i))
	}
	m := mutexes(names...)
	for i := 0; i < n-1; i++ {
		expectNone(t, func() { order(m[i], m[i+1]) })
	}
	last := m[n-1]
	last.Lock()
	r := expect(t, Circular, func() { m[0].Lock() })
	last.Unlock()
	if len(r.Chain) != n {
		t.Fatalf("chain %v, want %d locks", r.Chain, n)
	}
	if !strings.Contains(r.Text, "Chain exists of:") {
		t.Errorf("report lacks the chain:\n%s", r.Text)
	}
}

func TestCycle3(t *testing.T) { testCycle(t, 3) }
func TestCycle5(t *testing.T) { testCycle(t, 5) }

func TestNoFalseCycle(t *testing.T) {
	setup(t)
	m := mutexes("A", "B", "C", "D")
	expectNone(t, func() {
		order(m[0], m[1], m[2])
		order(m[0], m[2])
		order(m[1], m[3])
		order(m[0], m[3])
		order(m[2], m[3])
	})
}

func TestAA(t *testing.T) {
	setup(t)
	a := mutexes("A")[0]
	a.Lock()
	r := expect(t, Recursive, func() { a.Lock() })
	a.Unlock()
	if r.Lock != "A" || r.Held != "A" {
		t.Fatalf("got lock %q held %q", r.Lock, r.Held)
	}
}

func TestAASameClassTwoInstances(t *testing.T) {
	setup(t)
	c := NewClass("inode")
	a, b := NewMutex(c), NewMutex(c)
	a.Lock()
	expect(t, Recursive, func() { b.Lock() })
	a.Unlock()
}

func TestSubclassNesting(t *testing.T) {
	setup(t)
	c := NewClass("parent_child")
	a, b := NewMutex(c), NewMutex(c)
	expectNone(t, func() {
		a.Lock()
		b.LockNested(1)
		b.Unlock()
		a.Unlock()
	})
	// The subclass is a class of its own: the reverse nesting is a cycle.
	b.LockNested(1)
	expect(t, Circular, func() { a.Lock() })
	b.Unlock()
}

func TestBadSubclass(t *testing.T) {
	setup(t)
	a := mutexes("A")[0]
	expect(t, BadSubclass, func() { a.LockNested(MaxSubclasses) })
	if !a.mu.TryLock() {
		t.Fatal("lock taken despite the report")
	}
	a.mu.Unlock()
}

func TestBadUnlockNotLocked(t *testing.T) {
	setup(t)
	a := mutexes("A")[0]
	expect(t, BadUnlock, func() { a.Unlock() })
	// Refused: the mutex is still usable and unlocked.
	if !a.mu.TryLock() {
		t.Fatal("mutex left locked by a refused unlock")
	}
	a.mu.Unlock()
}

func TestBadUnlockOtherGoroutine(t *testing.T) {
	setup(t)
	a := mutexes("A")[0]
	a.Lock()
	done := make(chan *Report)
	go func() { done <- catch(func() { a.Unlock() }) }()
	r := <-done
	if r == nil || r.Kind != BadUnlock {
		t.Fatalf("got %v, want bad unlock", r)
	}
	if !strings.Contains(r.Text, "no locks held by goroutine") {
		t.Errorf("report does not say the unlocker holds nothing:\n%s", r.Text)
	}
}

func TestBadRUnlockPerPRWSem(t *testing.T) {
	setup(t)
	s := NewPerPRWSem(NewClass("sem"))
	expect(t, BadUnlock, func() { s.RUnlock() })
	if n := s.readers(); n != 0 {
		t.Fatalf("reader count %d after refused unlock", n)
	}
}

func TestTrylockAddsNoEdge(t *testing.T) {
	setup(t)
	m := mutexes("A", "B")
	a, b := m[0], m[1]
	expectNone(t, func() {
		a.Lock()
		if !b.TryLock() {
			t.Fatal("trylock failed")
		}
		b.Unlock()
		a.Unlock()
		order(b, a) // no A -> B edge was recorded
	})
	// But B -> A exists now, and a blocking A then B is reported.
	a.Lock()
	expect(t, Circular, func() { b.Lock() })
	a.Unlock()
}

func TestTrylockHolderAddsEdges(t *testing.T) {
	setup(t)
	m := mutexes("A", "B")
	a, b := m[0], m[1]
	expectNone(t, func() {
		if !a.TryLock() {
			t.Fatal("trylock failed")
		}
		b.Lock() // A (trylocked) -> B is a real dependency
		b.Unlock()
		a.Unlock()
	})
	b.Lock()
	expect(t, Circular, func() { a.Lock() })
	b.Unlock()
}

// The four cases of the 2020 recursive-read rules
// (Documentation/locking/lockdep-design.rst).
func TestRecursiveReadRules(t *testing.T) {
	type op struct {
		held, next string
		heldKind   Kind
		nextKind   Kind
	}
	take := func(l *RecursiveRWMutex, k Kind) {
		if k == Write {
			l.Lock()
		} else {
			l.RLock()
		}
	}
	drop := func(l *RecursiveRWMutex, k Kind) {
		if k == Write {
			l.Unlock()
		} else {
			l.RUnlock()
		}
	}
	cases := []struct {
		name     string
		edges    []op
		deadlock bool
	}{
		{"ER-ER-ER", []op{{"X", "Y", Write, RecursiveRead}, {"Y", "Z", Write, RecursiveRead}, {"Z", "X", Write, RecursiveRead}}, true},
		{"EN-SR-ER", []op{{"X", "Y", Write, Write}, {"Y", "Z", RecursiveRead, RecursiveRead}, {"Z", "X", Write, RecursiveRead}}, true},
		{"EN-SR-SN", []op{{"X", "Y", Write, Write}, {"Y", "Z", RecursiveRead, RecursiveRead}, {"Z", "X", RecursiveRead, Write}}, false},
		{"ER-SR-EN", []op{{"X", "Y", Write, RecursiveRead}, {"Y", "Z", RecursiveRead, RecursiveRead}, {"Z", "X", Write, Write}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setup(t)
			locks := map[string]*RecursiveRWMutex{}
			for _, n := range []string{"X", "Y", "Z"} {
				locks[n] = NewRecursiveRWMutex(NewClass(n))
			}
			for i, o := range tc.edges {
				h, n := locks[o.held], locks[o.next]
				take(h, o.heldKind)
				r := catch(func() { take(n, o.nextKind); drop(n, o.nextKind) })
				drop(h, o.heldKind)
				last := i == len(tc.edges)-1
				switch {
				case r != nil && !(last && tc.deadlock):
					t.Fatalf("unexpected report at edge %d:\n%s", i, r.Text)
				case last && tc.deadlock && r == nil:
					t.Fatal("deadlock not reported")
				case last && tc.deadlock && r.Kind != Circular:
					t.Fatalf("got %v", r.Kind)
				}
			}
		})
	}
}

func TestRecursiveReadNesting(t *testing.T) {
	setup(t)
	l := NewRecursiveRWMutex(NewClass("rwlock"))
	expectNone(t, func() {
		l.RLock()
		l.RLock() // recursive reader: fine
		l.RUnlock()
		l.RUnlock()
	})
	l.RLock()
	expect(t, Recursive, func() { l.Lock() })
	l.RUnlock()
}

func TestRWMutexReadersNotRecursive(t *testing.T) {
	setup(t)
	l := NewRWMutex(NewClass("rwsem"))
	l.RLock()
	expect(t, Recursive, func() { l.RLock() })
	l.RUnlock()
}

// The chain hash must include each lock's kind: a cached A; read(B) must
// not hide a later A; write(B).
func TestChainKeyIncludesKind(t *testing.T) {
	setup(t)
	a := NewMutex(NewClass("A"))
	b := NewRecursiveRWMutex(NewClass("B"))
	expectNone(t, func() {
		a.Lock()
		b.RLock() // A -(ER)-> B
		b.RUnlock()
		a.Unlock()
		a.Lock()
		b.Lock() // A -(EN)-> B: must not be a cache hit
		b.Unlock()
		a.Unlock()
	})
	// B held for read, A taken: deadlocks only against A -(EN)-> B.
	b.RLock()
	expect(t, Circular, func() { a.Lock() })
	b.RUnlock()
}

// A reader of the per-P rwsem that reads again while a writer waits
// deadlocks for real; lockdep reports it before it blocks.
func TestPerPRWSemNestedReadWaitingWriter(t *testing.T) {
	setup(t)
	s := NewPerPRWSem(NewClass("mem_hotplug_lock"))
	s.RLock()
	wdone := make(chan struct{})
	go func() {
		s.Lock()
		s.Unlock()
		close(wdone)
	}()
	for s.block.Load() == 0 {
		runtime.Gosched()
	}
	// The writer is waiting: a new reader cannot get in.
	if s.tryFast() {
		t.Fatal("reader got in while a writer waits")
	}
	r := expect(t, Recursive, func() { s.RLock() })
	if r.Lock != "mem_hotplug_lock" {
		t.Fatalf("report about %q", r.Lock)
	}
	s.RUnlock()
	<-wdone
}

// The hotplug lock order of the blueprint.
func TestHotplugLockOrder(t *testing.T) {
	setup(t)
	device := NewMutex(NewClass("device_hotplug_lock"))
	blockDev := NewMutex(NewClass("&dev->mutex"))
	memHotplug := NewPerPRWSem(NewClass("mem_hotplug_lock"))
	slabMutex := NewMutex(NewClass("slab_mutex"))
	listLock := NewMutex(NewClass("&n->list_lock"))
	expectNone(t, func() {
		device.Lock()
		blockDev.Lock()
		memHotplug.Lock()
		slabMutex.Lock()
		listLock.Lock()
		listLock.Unlock()
		slabMutex.Unlock()
		memHotplug.Unlock()
		blockDev.Unlock()
		device.Unlock()
		// get_online_mems() then slab_mutex, as cache users do.
		memHotplug.RLock()
		slabMutex.Lock()
		slabMutex.Unlock()
		memHotplug.RUnlock()
	})
	slabMutex.Lock()
	r := expect(t, Circular, func() { memHotplug.RLock() })
	slabMutex.Unlock()
	if r.Lock != "mem_hotplug_lock" || r.Held != "slab_mutex" {
		t.Fatalf("got lock %q held %q", r.Lock, r.Held)
	}
}

// The memory-hotplug inversion the kernel documents: add_memory registered
// block devices (device lock) under mem_hotplug_lock while sysfs onlining
// takes the device lock, then mem_hotplug_lock.
func TestHotplugInversion(t *testing.T) {
	setup(t)
	blockDev := NewMutex(NewClass("&dev->mutex"))
	memHotplug := NewPerPRWSem(NewClass("mem_hotplug_lock"))
	expectNone(t, func() { // online via sysfs
		blockDev.Lock()
		memHotplug.Lock()
		memHotplug.Unlock()
		blockDev.Unlock()
	})
	memHotplug.Lock() // add_memory
	expect(t, Circular, func() { blockDev.Lock() })
	memHotplug.Unlock()
}

func TestDepthExceeded(t *testing.T) {
	setup(t)
	var ms []*Mutex
	for i := 0; i <= MaxDepth; i++ {
		ms = append(ms, NewMutex(NewClass("depth")))
	}
	r := catch(func() {
		for _, m := range ms {
			m.Lock()
		}
	})
	if r == nil || r.Kind != DepthExceeded {
		t.Fatalf("got %v", r)
	}
	for _, m := range ms[:MaxDepth] {
		m.mu.Unlock()
	}
}

func TestContinueAfterReport(t *testing.T) {
	setup(t)
	SetContinueAfterReport(true) // setup's cleanup restores it
	m := mutexes("A", "B")
	order(m[0], m[1])
	m[1].Lock()
	expect(t, Circular, func() { m[0].Lock() })
	m[1].Unlock()
	if !Enabled() {
		t.Fatal("validator off although configured to continue")
	}
	if n := ReportCount(); n != 1 {
		t.Fatalf("%d reports recorded", n)
	}
}

func TestHeld(t *testing.T) {
	setup(t)
	m := mutexes("A")[0]
	if m.AssertHeld() {
		t.Fatal("held before lock")
	}
	m.Lock()
	if !m.AssertHeld() || HeldCount() != 1 {
		t.Fatal("not held after lock")
	}
	m.Unlock()
	if m.AssertHeld() || HeldCount() != 0 {
		t.Fatal("held after unlock")
	}
}

// Releasing a lock other than the last recomputes the chain above it.
func TestOutOfOrderRelease(t *testing.T) {
	setup(t)
	m := mutexes("A", "B", "C")
	expectNone(t, func() {
		m[0].Lock()
		m[1].Lock()
		m[0].Unlock()
		m[2].Lock() // B -> C
		m[2].Unlock()
		m[1].Unlock()
	})
	m[2].Lock()
	expect(t, Circular, func() { m[1].Lock() })
	m[2].Unlock()
}

func TestCachedChainZeroAlloc(t *testing.T) {
	setup(t)
	m := mutexes("A", "B")
	order(m[0], m[1])
	allocs := testing.AllocsPerRun(1000, func() { order(m[0], m[1]) })
	if allocs != 0 {
		t.Fatalf("%v allocations per cached chain", allocs)
	}
	off := testing.AllocsPerRun(1000, func() {
		Disable()
		order(m[0], m[1])
		Enable()
	})
	if off != 0 {
		t.Fatalf("%v allocations with the validator off", off)
	}
}

// Many readers and writers under -race, with GOMAXPROCS changing so that
// Ps beyond the per-P slots are used: no reader is inside while a writer
// is, no wakeup is lost (the test ends), and the count is exact.
func TestPerPRWSemStress(t *testing.T) {
	setup(t)
	s := NewPerPRWSem(NewClass("stress_sem"))
	var readersIn, writersIn atomic.Int32
	var shared int // written by writers only, read by readers: -race checks exclusion
	const readers, writers = 16, 3
	iters := 3000
	if testing.Short() {
		iters = 500
	}
	var wg sync.WaitGroup
	errc := make(chan string, 16)
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < iters; j++ {
				s.RLock()
				readersIn.Add(1)
				if writersIn.Load() != 0 {
					errc <- "reader inside with a writer"
				}
				_ = shared
				readersIn.Add(-1)
				s.RUnlock()
			}
		}()
	}
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < iters/50; j++ {
				s.Lock()
				if writersIn.Add(1) != 1 {
					errc <- "two writers inside"
				}
				if readersIn.Load() != 0 {
					errc <- "writer inside with readers"
				}
				shared++
				writersIn.Add(-1)
				s.Unlock()
			}
		}()
	}
	stop := make(chan struct{})
	go func() { // vary GOMAXPROCS beyond the slot count
		orig := runtime.GOMAXPROCS(0)
		defer runtime.GOMAXPROCS(orig)
		for p := 1; ; p = p%6 + 1 {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				runtime.GOMAXPROCS(p)
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		buf := make([]byte, 1<<20)
		t.Fatalf("stuck (lost wakeup?):\n%s", buf[:runtime.Stack(buf, true)])
	}
	close(stop)
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	if shared != writers*(iters/50) {
		t.Fatalf("shared = %d", shared)
	}
	if n := s.readers(); n != 0 {
		t.Fatalf("reader count %d at rest", n)
	}
	if !s.TryLock() {
		t.Fatal("cannot write-lock an idle semaphore")
	}
	s.Unlock()
}

// After the first report switches validation off, locks released while it
// is off must leave their goroutine's held stack, and locks taken while it
// is off must join it: a later Enable then sees exactly the locks held. The
// handler records instead of panicking, so the reported acquisition really
// takes its lock, as it does outside tests.
func TestEnableAfterReport(t *testing.T) {
	setup(t)
	var mu sync.Mutex
	var got []Report
	SetHandler(func(r Report) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	})
	reports := func() []Report {
		mu.Lock()
		defer mu.Unlock()
		return append([]Report(nil), got...)
	}
	m := mutexes("A", "B", "X", "Y", "Z")
	a, b, x, y, z := m[0], m[1], m[2], m[3], m[4]

	x.Lock() // held across the report and the Enable
	order(a, b)
	b.Lock()
	a.Lock() // the real inversion: reported, validation switched off
	if rs := reports(); len(rs) != 1 || rs[0].Kind != Circular {
		t.Fatalf("got %d reports, want one circular", len(rs))
	}
	if Enabled() {
		t.Fatal("validator still on after the report")
	}
	a.Unlock() // released while off: must leave the held stack
	b.Unlock()
	y.Lock() // taken while off, held across the Enable

	// Another goroutine takes Z while off and releases it after the Enable.
	zHeld, enabled, zDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		z.Lock()
		close(zHeld)
		<-enabled
		z.Unlock()
		close(zDone)
	}()
	<-zHeld

	Enable()
	if n := HeldCount(); n != 2 || !x.AssertHeld() || !y.AssertHeld() || a.AssertHeld() || b.AssertHeld() {
		t.Errorf("after Enable: %d locks held, X %v Y %v A %v B %v; want X and Y only",
			n, x.AssertHeld(), y.AssertHeld(), a.AssertHeld(), b.AssertHeld())
	}
	close(enabled)
	<-zDone     // Z taken while off, released after the Enable: no bad unlock
	order(a, b) // the allowed order again: no stale A or B on the stack
	y.Unlock()  // taken while off: known, no bad unlock
	x.Unlock()
	if HeldCount() != 0 {
		t.Errorf("%d locks held at the end", HeldCount())
	}
	if rs := reports(); len(rs) != 1 {
		t.Fatalf("%d report(s) after Enable; the first:\n%s", len(rs)-1, rs[1].Text)
	}
	if !Enabled() {
		t.Fatal("validator off after Enable")
	}
}
