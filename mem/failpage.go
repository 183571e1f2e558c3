//go:build linux

// fail_page_alloc: fault injection into the page allocator.

package mem

import (
	"fmt"
	"syscall"

	"github.com/hotslab/hotslab/fault"
)

// DefaultFailMinOrder is fail_page_alloc's default min-order: order-0
// allocations never fail unless it is lowered (the kernel's default 1).
const DefaultFailMinOrder = 1

// FailPageAlloc returns the page allocator's fault injection knobs (the
// kernel's fail_page_alloc): an allocation of order FailMinOrder or more
// fails with an error wrapping syscall.ENOMEM and fault.ErrInjected when
// they say so, having changed nothing.
func (s *System) FailPageAlloc() *fault.Attr { return s.failPage }

// FailMinOrder returns fail_page_alloc's min-order.
func (s *System) FailMinOrder() int { return int(s.failMinOrder.Load()) }

// SetFailMinOrder sets fail_page_alloc's min-order (0..MaxOrder+1).
func (s *System) SetFailMinOrder(o int) error {
	if o < 0 || o > MaxOrder+1 {
		return fmt.Errorf("mem: fail_page_alloc min-order %d not in 0..%d: %w", o, MaxOrder+1, syscall.EINVAL)
	}
	s.failMinOrder.Store(int32(o))
	return nil
}

// shouldFailPage is should_fail_alloc_page().
func (s *System) shouldFailPage(order int) error {
	if order < int(s.failMinOrder.Load()) || !s.failPage.ShouldFail(int64(PageSize)<<order) {
		return nil
	}
	return fmt.Errorf("mem: alloc pages order %d: %w: %w", order, fault.ErrInjected, syscall.ENOMEM)
}
