//go:build linux

package mem

// Regression tests from an adversarial review of debug caches, hardening
// and fault injection (issue 13).

import (
	"errors"
	"syscall"
	"testing"
)

// R3-10: fail_page_alloc is asked before AllocPages validates its
// arguments: an invalid order gets an injected ENOMEM (and uses up a
// "times") instead of EINVAL; the kernel rejects order > MAX_PAGE_ORDER
// before should_fail_alloc_page().
func TestRegression3FailPageBeforeValidation(t *testing.T) {
	s := newTest(t, Config{})
	fp := s.FailPageAlloc()
	fp.SetVerbose(0)
	fp.SetTimes(1)
	fp.SetProbability(100)
	_, err := s.AllocPages(0, MaxOrder+1, 0)
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("AllocPages(order %d) under fail_page_alloc: %v (times now %d), want EINVAL", MaxOrder+1, err, fp.Times())
	}
}
