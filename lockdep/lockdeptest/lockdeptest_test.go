package lockdeptest_test

import (
	"fmt"
	"testing"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }

// fakeTB is one simulated test: it keeps the cleanups Check registers and
// the errors it raises instead of failing the real test.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// finish ends the simulated test, running its cleanups as testing does.
func (f *fakeTB) finish() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// A test whose report switched the validator off must not leak its lock
// state into the next test's Check, which switches it back on: the next
// test sees only the locks really held.
func TestCheckAfterReport(t *testing.T) {
	old := lockdep.SetHandler(func(lockdep.Report) {}) // record only: the locks are really taken
	t.Cleanup(func() {
		lockdep.SetHandler(old)
		lockdep.Reset() // forget this test's deliberate report, or Main fails
	})
	a := lockdep.NewMutex(lockdep.NewClass("check_a"))
	b := lockdep.NewMutex(lockdep.NewClass("check_b"))

	first := &fakeTB{TB: t}
	lockdeptest.Check(first)
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock() // the inversion: reported, validation switched off
	a.Unlock()
	b.Unlock()
	first.finish()
	if len(first.errors) != 1 {
		t.Fatalf("Check raised %d errors for a test with one report, want 1", len(first.errors))
	}
	if lockdep.Enabled() {
		t.Fatal("validator on after a report")
	}

	second := &fakeTB{TB: t}
	lockdeptest.Check(second)
	if !lockdep.Enabled() {
		t.Fatal("Check did not switch the validator on")
	}
	if n := lockdep.HeldCount(); n != 0 {
		t.Errorf("second test starts with %d locks held", n)
	}
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	second.finish()
	if len(second.errors) != 0 {
		t.Fatalf("the first test's state leaked into the second:\n%s", second.errors[0])
	}
}
