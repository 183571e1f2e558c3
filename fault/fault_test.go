package fault_test

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/hotslab/hotslab/fault"
)

func quiet(a *fault.Attr) *fault.Attr { a.SetVerbose(0); return a }

func TestDefaultsInactive(t *testing.T) {
	a := fault.New("x", nil)
	if a.Active() || a.Probability() != 0 || a.Interval() != 1 || a.Times() != 1 || a.Space() != 0 || a.Verbose() != 2 {
		t.Fatalf("defaults: %v %d %d %d %d %d", a.Active(), a.Probability(), a.Interval(), a.Times(), a.Space(), a.Verbose())
	}
	for i := 0; i < 1000; i++ {
		if a.ShouldFail(8) {
			t.Fatal("an inactive Attr failed")
		}
	}
}

// should_fail_ex's order: times, space, interval, probability.
func TestSemantics(t *testing.T) {
	a := quiet(fault.New("x", nil))
	var changes []bool
	a.OnChange(func(on bool) { changes = append(changes, on) })
	a.SetTimes(3)
	a.SetProbability(100)
	n := 0
	for i := 0; i < 10; i++ {
		if a.ShouldFail(1) {
			n++
		}
	}
	if n != 3 || a.Times() != 0 || a.Active() || a.Failures() != 3 {
		t.Fatalf("times 3: %d failures, times %d, active %v", n, a.Times(), a.Active())
	}
	if fmt.Sprint(changes) != "[true false]" {
		t.Errorf("OnChange calls %v", changes)
	}
	a.SetTimes(-1)
	a.SetInterval(4)
	n = 0
	for i := 0; i < 40; i++ {
		if a.ShouldFail(1) {
			n++
		}
	}
	if n != 10 {
		t.Errorf("interval 4: %d of 40", n)
	}
	a.SetInterval(1)
	a.SetSpace(100)
	passed := 0
	for a.ShouldFail(30) == false {
		passed++
	}
	if passed != 3 { // 100 > 30, 70 > 30, 40 > 30, then 10 is not > 30
		t.Errorf("space 100 let %d of 30 through", passed)
	}
	a.SetProbability(0)
	if a.Active() || a.ShouldFail(1) {
		t.Error("probability 0 still fails")
	}
	for _, err := range []error{a.SetProbability(-1), a.SetInterval(0), a.SetTimes(-3), a.SetSpace(-1), a.SetVerbose(5)} {
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("bad knob: %v", err)
		}
	}
}

// Concurrent callers never fail more than times allows.
func TestTimesExactUnderConcurrency(t *testing.T) {
	a := quiet(fault.New("x", nil))
	a.SetTimes(100)
	a.SetProbability(100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if a.ShouldFail(1) {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if n != 100 {
		t.Fatalf("%d failures with times 100", n)
	}
}

// An Attr failing every other call, three times.
func ExampleAttr() {
	a := fault.New("demo", nil)
	a.SetVerbose(0)
	a.SetInterval(2)
	a.SetTimes(3)
	a.SetProbability(100)
	for i := 1; i <= 8; i++ {
		fmt.Print(a.ShouldFail(64), " ")
	}
	fmt.Println()
	// Output: false true false true false true false false
}
