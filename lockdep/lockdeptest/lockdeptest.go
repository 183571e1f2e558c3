// Package lockdeptest makes every lockdep report a test failure.
//
// Use Main from a package's TestMain so the validator is on for every test
// of the package and any report fails the run, and Check in a test to fail
// that very test.
package lockdeptest

import (
	"fmt"
	"os"
	"testing"

	"github.com/hotslab/hotslab/lockdep"
)

// Main enables lockdep, runs the tests and exits non-zero if any test
// failed or the validator reported anything.
func Main(m *testing.M) {
	lockdep.Enable()
	code := m.Run()
	if rs := lockdep.Reports(); len(rs) > 0 {
		fmt.Fprintf(os.Stderr, "lockdeptest: %d lockdep report(s); first:\n%s\n", len(rs), rs[0].Text)
		code = 1
	}
	os.Exit(code)
}

// Check enables lockdep and fails tb if a report is recorded between the
// call and the end of the test. It may follow a test whose report switched
// validation off: lockdep kept the held-lock stacks meanwhile, so the test
// starts from the locks really held, not from that test's leftovers.
func Check(tb testing.TB) {
	tb.Helper()
	lockdep.Enable()
	n := lockdep.ReportCount()
	tb.Cleanup(func() {
		if rs := lockdep.Reports(); len(rs) > n {
			tb.Errorf("lockdep: %d new report(s); first:\n%s", len(rs)-n, rs[n].Text)
		}
	})
}
