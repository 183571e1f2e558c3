package fault

// Regression tests from an adversarial review of debug caches, hardening
// and fault injection (issue 13).

import (
	"sync"
	"testing"
)

// R3-9: update() publishes an 'active' computed from stale reads: the
// last failure (times 1 -> 0) racing a SetTimes(5) can leave the Attr
// inactive with probability 100 and times 5, so it never fails again.
func TestRegression3ActiveLostUpdate(t *testing.T) {
	for i := 0; i < 200000; i++ {
		a := New("r3", nil)
		a.SetVerbose(0)
		a.SetTimes(1)
		a.SetProbability(100)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.ShouldFail(1) }()
		go func() { defer wg.Done(); a.SetTimes(5) }()
		wg.Wait()
		if want := a.Times() != 0; a.Active() != want {
			t.Fatalf("iteration %d: times %d, probability %d, Active() = %v: ShouldFail never fails again (%v)",
				i, a.Times(), a.Probability(), a.Active(), a.ShouldFail(1))
		}
	}
}
