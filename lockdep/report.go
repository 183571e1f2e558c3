package lockdep

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/petermattis/goid"
)

// ReportKind says what a report is about.
type ReportKind int

const (
	// Circular is "possible circular locking dependency detected".
	Circular ReportKind = iota + 1
	// Recursive is "possible recursive locking detected".
	Recursive
	// BadUnlock is "bad unlock balance detected".
	BadUnlock
	// DepthExceeded is "MAX_LOCK_DEPTH too low".
	DepthExceeded
	// BadSubclass is a subclass outside [0, MaxSubclasses).
	BadSubclass
)

// String returns the report kind's name.
func (k ReportKind) String() string {
	switch k {
	case Circular:
		return "possible circular locking dependency detected"
	case Recursive:
		return "possible recursive locking detected"
	case BadUnlock:
		return "bad unlock balance detected"
	case DepthExceeded:
		return "BUG: MAX_LOCK_DEPTH too low!"
	case BadSubclass:
		return "BUG: looking up invalid subclass"
	}
	return "lockdep report"
}

// Report is one problem found by the validator.
type Report struct {
	Kind      ReportKind
	Goroutine int64
	// Lock is the lock being taken or released, Held the held lock it
	// conflicts with (empty when none).
	Lock, Held string
	// Chain is the existing dependency chain, from the new lock to the
	// held one, as lock names (circular reports only).
	Chain []string
	// Text is the full report in the kernel's shape.
	Text string
}

var (
	reportMu sync.Mutex // lockdep's own raw lock
	reports  []Report
	handler  func(Report) = defaultHandler
)

func defaultHandler(r Report) { os.Stderr.WriteString(r.Text) }

// SetHandler installs the function called with every report (nil restores
// the default, which writes the report to stderr). Reports are recorded
// whatever the handler. It returns the previous handler.
func SetHandler(h func(Report)) func(Report) {
	reportMu.Lock()
	defer reportMu.Unlock()
	old := handler
	if h == nil {
		h = defaultHandler
	}
	handler = h
	return old
}

// Reports returns a copy of every report recorded since start or Reset.
func Reports() []Report {
	reportMu.Lock()
	defer reportMu.Unlock()
	return append([]Report(nil), reports...)
}

// ReportCount returns the number of reports recorded.
func ReportCount() int {
	reportMu.Lock()
	defer reportMu.Unlock()
	return len(reports)
}

// report records r and calls the handler. Unless the validator continues
// after reports, the first report switches validation off (to modeTrack,
// keeping held stacks exact) and a report racing with it is dropped, as
// the kernel's debug_locks_off() lets only its first caller print.
func report(r *Report, t *task, body func(b *strings.Builder)) {
	if !continueAfterReport.Load() && !mode.CompareAndSwap(modeOn, modeTrack) {
		return // debug_locks_off() already done by another report
	}
	banner := r.Kind.String()
	if r.Goroutine == 0 {
		r.Goroutine = goid.Get()
	}
	var b strings.Builder
	line := strings.Repeat("=", len(banner)+9)
	fmt.Fprintf(&b, "\n%s\nWARNING: %s\n%s\n", line, banner, strings.Repeat("-", len(banner)+9))
	if body != nil {
		body(&b)
	}
	if t != nil {
		b.WriteString("\n")
		writeHeld(&b, t)
	}
	b.WriteString("\nstack backtrace:\n")
	writeStack(&b, callers(3))
	r.Text = b.String()
	reportMu.Lock()
	reports = append(reports, *r)
	h := handler
	reportMu.Unlock()
	h(*r)
}

func usage(n *node) string {
	// A compact form of the kernel's {+.+.} usage string: W if ever taken
	// for write, R if ever taken for read.
	w, r := ".", "."
	if n.usedWrite {
		w = "+"
	}
	if n.usedRead {
		r = "+"
	}
	return "{" + w + r + "}"
}

func writeHeld(b *strings.Builder, t *task) {
	if t.depth == 0 {
		fmt.Fprintf(b, "no locks held by goroutine %d.\n", t.id)
		return
	}
	s := "s"
	if t.depth == 1 {
		s = ""
	}
	fmt.Fprintf(b, "%d lock%s held by goroutine %d:\n", t.depth, s, t.id)
	for i := 0; i < t.depth; i++ {
		h := &t.held[i]
		fmt.Fprintf(b, " #%d: (%s){%s} %#x\n", i, h.node.name(), h.kind, h.inst)
	}
}

func writeStack(b *strings.Builder, pcs []uintptr) {
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		internal := strings.HasPrefix(f.Function, "github.com/hotslab/hotslab/lockdep.") &&
			!strings.HasSuffix(f.File, "_test.go")
		if f.Function != "" && !internal {
			fmt.Fprintf(b, "       %s\n           %s:%d\n", f.Function, f.File, f.Line)
		}
		if !more {
			break
		}
	}
}

func lockOp(k Kind, name string) string {
	switch k {
	case Read:
		return "rlock(" + name + ");"
	case RecursiveRead:
		return "recursive_rlock(" + name + ");"
	}
	return "lock(" + name + ");"
}

func reportCircular(t *task, n *node, k Kind, h *held, path []step) {
	r := &Report{Kind: Circular, Goroutine: t.id, Lock: n.name(), Held: h.node.name()}
	r.Chain = append(r.Chain, n.name())
	for _, s := range path {
		r.Chain = append(r.Chain, s.e.to.name())
	}
	graphMu.Lock()
	nu, hu := usage(n), usage(h.node)
	graphMu.Unlock()
	report(r, t, func(b *strings.Builder) {
		fmt.Fprintf(b, "goroutine %d is trying to acquire lock:\n  (%s)%s, as %s\n\n", t.id, n.name(), nu, k)
		fmt.Fprintf(b, "but goroutine is already holding lock:\n  (%s)%s, as %s\n\n", h.node.name(), hu, h.kind)
		b.WriteString("which lock already depends on the new lock.\n\n")
		b.WriteString("the existing dependency chain (in reverse order) is:\n")
		for i := len(path) - 1; i >= 0; i-- {
			s := path[i]
			fmt.Fprintf(b, "\n-> #%d (%s) %s (%s):\n", i+1, s.e.from.name(), depNames[depBit(s.typ)], s.e.to.name())
			writeStack(b, s.e.stack[depBit(s.typ)])
		}
		fmt.Fprintf(b, "\n-> #0 (%s) %s (%s): the acquisition now\n", h.node.name(), depNames[depBit(depType(h.kind, k))], n.name())
		b.WriteString("\nother info that might help us debug this:\n\n")
		target, source := h.node.name(), n.name()
		parent := path[len(path)-1].e.from.name()
		if len(path) > 1 {
			b.WriteString("Chain exists of:\n  ")
			b.WriteString(strings.Join(r.Chain, " --> "))
			b.WriteString("\n\n")
		}
		b.WriteString(" Possible unsafe locking scenario:\n\n")
		fmt.Fprintf(b, "       %-32s%s\n", "CPU0", "CPU1")
		fmt.Fprintf(b, "       %-32s%s\n", "----", "----")
		fmt.Fprintf(b, "  %s\n", lockOp(h.kind, target))
		fmt.Fprintf(b, "  %-37s%s\n", "", lockOp(Write, parent))
		fmt.Fprintf(b, "  %-37s%s\n", "", lockOp(h.kind, target))
		fmt.Fprintf(b, "  %s\n", lockOp(k, source))
		b.WriteString("\n *** DEADLOCK ***\n")
	})
}

func reportRecursive(t *task, n *node, k Kind, h *held) {
	r := &Report{Kind: Recursive, Goroutine: t.id, Lock: n.name(), Held: h.node.name()}
	report(r, t, func(b *strings.Builder) {
		fmt.Fprintf(b, "goroutine %d is trying to acquire lock:\n  (%s), as %s\n\n", t.id, n.name(), k)
		fmt.Fprintf(b, "but goroutine is already holding lock:\n  (%s), as %s\n\n", h.node.name(), h.kind)
		b.WriteString("other info that might help us debug this:\n Possible unsafe locking scenario:\n\n")
		b.WriteString("       CPU0\n       ----\n")
		fmt.Fprintf(b, "  %s\n  %s\n", lockOp(h.kind, h.node.name()), lockOp(k, n.name()))
		b.WriteString("\n *** DEADLOCK ***\n\n May be due to missing lock nesting notation\n")
	})
}

func reportBadUnlock(c *Class, t *task, id int64) {
	r := &Report{Kind: BadUnlock, Goroutine: id, Lock: c.name}
	report(r, t, func(b *strings.Builder) {
		fmt.Fprintf(b, "goroutine %d is trying to release lock (%s) at:\n", id, c.name)
		b.WriteString("but there are no more locks to release!\n")
		if t == nil {
			fmt.Fprintf(b, "\nno locks held by goroutine %d.\n", id)
		}
	})
}
