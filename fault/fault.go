// Package fault is hotslab's fault injection: the kernel's fault_attr
// (lib/fault-inject.c) with its knobs — probability, interval, times,
// space, verbose — as used by failslab (slab.Allocator.Failslab) and
// fail_page_alloc (mem.System.FailPageAlloc), and shown by package sysfs
// under sys/kernel/debug/{failslab,fail_page_alloc}/.
//
// An Attr decides, for each operation it guards, whether that one fails
// (ShouldFail), exactly as should_fail_ex() does: not while times is 0;
// not while space (bytes let through first) lasts; only every interval-th
// call; then with probability percent; a failure decrements times unless
// it is -1 (unlimited) and is logged if verbose. The zero knobs make it
// inactive: probability 0 fails nothing.
package fault

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
)

// Attr is one fault injection point's knobs and counters. Its methods are
// safe for concurrent use; ShouldFail is cheap while the Attr is inactive
// (one atomic load).
type Attr struct {
	name        string
	probability atomic.Int32 // percent, 0..100
	interval    atomic.Int64 // >= 1
	times       atomic.Int64 // -1: unlimited
	space       atomic.Int64 // bytes let through before failing
	verbose     atomic.Int32 // 0 quiet, 1 a line, 2 a line with the stack
	count       atomic.Uint64
	failures    atomic.Uint64
	active      atomic.Bool // probability > 0 && times != 0
	onChange    atomic.Pointer[func(active bool)]
	log         *slog.Logger
}

// New returns an inactive Attr named name (as its debugfs directory), with
// the kernel's defaults: probability 0, interval 1, times 1, space 0,
// verbose 2. A nil log is slog.Default().
func New(name string, log *slog.Logger) *Attr {
	if log == nil {
		log = slog.Default()
	}
	a := &Attr{name: name, log: log}
	a.interval.Store(1)
	a.times.Store(1)
	a.verbose.Store(2)
	return a
}

// ErrInvalid is what a setter's error wraps for an out-of-range value
// (EINVAL, as the debugfs files refuse it).
var ErrInvalid = syscall.EINVAL

// Name returns the Attr's name.
func (a *Attr) Name() string { return a.name }

// OnChange sets f, called whenever the Attr turns active or inactive —
// from the setter, or from the ShouldFail whose failure used up times,
// with whatever locks that caller holds (the Attr itself holds none): a
// guarded fast path that cannot check ShouldFail itself steps aside while
// it is active.
func (a *Attr) OnChange(f func(active bool)) { a.onChange.Store(&f) }

// update recomputes active from the knobs, and again after a change it
// made, so that a setter racing with the last failure (times 1 → 0) leaves
// active as the knobs say, not as the loser read them.
func (a *Attr) update() {
	for {
		on := a.probability.Load() > 0 && a.times.Load() != 0
		old := a.active.Load()
		if old == on {
			return
		}
		if a.active.CompareAndSwap(old, on) {
			if f := a.onChange.Load(); f != nil {
				(*f)(on)
			}
		}
	}
}

// Active reports whether the Attr may fail anything now.
func (a *Attr) Active() bool { return a.active.Load() }

// SetProbability sets the failure probability in percent (0..100).
func (a *Attr) SetProbability(p int) error {
	if p < 0 || p > 100 {
		return fmt.Errorf("fault %s: probability %d not in 0..100: %w", a.name, p, ErrInvalid)
	}
	a.probability.Store(int32(p))
	a.update()
	return nil
}

// SetInterval sets the interval: only every n-th call may fail (n >= 1).
func (a *Attr) SetInterval(n int64) error {
	if n < 1 {
		return fmt.Errorf("fault %s: interval %d < 1: %w", a.name, n, ErrInvalid)
	}
	a.interval.Store(n)
	return nil
}

// SetTimes sets how many failures may still happen (-1: unlimited).
func (a *Attr) SetTimes(n int64) error {
	if n < -1 {
		return fmt.Errorf("fault %s: times %d < -1: %w", a.name, n, ErrInvalid)
	}
	a.times.Store(n)
	a.update()
	return nil
}

// SetSpace sets how many bytes the guarded operations may take before
// any fails.
func (a *Attr) SetSpace(n int64) error {
	if n < 0 {
		return fmt.Errorf("fault %s: space %d < 0: %w", a.name, n, ErrInvalid)
	}
	a.space.Store(n)
	return nil
}

// SetVerbose sets the verbosity of the failure log (0, 1 or 2).
func (a *Attr) SetVerbose(n int) error {
	if n < 0 || n > 2 {
		return fmt.Errorf("fault %s: verbose %d not in 0..2: %w", a.name, n, ErrInvalid)
	}
	a.verbose.Store(int32(n))
	return nil
}

// Probability returns the failure probability in percent.
func (a *Attr) Probability() int { return int(a.probability.Load()) }

// Interval returns the interval (only every Interval-th call may fail).
func (a *Attr) Interval() int64 { return a.interval.Load() }

// Times returns how many failures may still happen (-1: unlimited).
func (a *Attr) Times() int64 { return a.times.Load() }

// Space returns the bytes still let through before any failure.
func (a *Attr) Space() int64 { return a.space.Load() }

// Verbose returns the verbosity of the failure log.
func (a *Attr) Verbose() int { return int(a.verbose.Load()) }

// Failures returns how many operations the Attr failed.
func (a *Attr) Failures() uint64 { return a.failures.Load() }

// ShouldFail reports whether the operation (of size bytes) must fail.
// Kernel: should_fail_ex().
func (a *Attr) ShouldFail(size int64) bool {
	if !a.active.Load() {
		return false
	}
	if a.times.Load() == 0 {
		return false
	}
	for {
		sp := a.space.Load()
		if sp <= 0 {
			break
		}
		if sp > size {
			if a.space.CompareAndSwap(sp, sp-size) {
				return false
			}
			continue
		}
		break
	}
	if iv := a.interval.Load(); iv > 1 && a.count.Add(1)%uint64(iv) != 0 {
		return false
	}
	if int32(rand.IntN(100)) >= a.probability.Load() {
		return false
	}
	for {
		t := a.times.Load()
		if t == 0 {
			return false
		}
		if t == -1 || a.times.CompareAndSwap(t, t-1) {
			if t == 1 {
				a.update()
			}
			break
		}
	}
	a.failures.Add(1)
	switch a.verbose.Load() {
	case 1:
		a.log.Info("FAULT_INJECTION: forcing a failure", "attr", a.name, "size", size)
	case 2:
		buf := make([]byte, 4096)
		buf = buf[:runtime.Stack(buf, false)]
		a.log.Info("FAULT_INJECTION: forcing a failure", "attr", a.name, "size", size, "stack", string(buf))
	}
	return true
}

// ErrInjected is what an injected failure's error wraps (with the errno
// the operation reports, ENOMEM for allocations).
var ErrInjected = errors.New("fault injected")
