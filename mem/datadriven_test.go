//go:build linux

// The datadriven scenarios of testdata/ (cockroachdb/datadriven): the
// commands they use and the runner.

package mem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// ddEnv is the state of one scenario file.
type ddEnv struct {
	s      *System
	allocs map[string]ddAlloc
	unreg  map[string]func()
	mu     sync.Mutex
	events []string
	// cancelOn and cancel: an offline's cancel=EVENT option. The
	// offline's context is cancelled when EVENT (a notifier event name,
	// or "migrate") happens, which makes an interrupted offline
	// deterministic: no timer decides where it stops.
	cancelOn string
	cancel   context.CancelFunc
}

type ddAlloc struct {
	addr  uintptr
	order int
}

// ddMigrator moves a named allocation: it copies the page and updates the
// scenario's table.
type ddMigrator struct {
	e    *ddEnv
	name string
}

func (m ddMigrator) MigratePage(old, new uintptr, order int) error {
	s := m.e.s
	copy(s.bytes(new, PageSize<<order), s.bytes(old, PageSize<<order))
	m.e.allocs[m.name] = ddAlloc{new, order}
	m.e.log(fmt.Sprintf("migrate %s: block %d -> block %d", m.name, s.BlockOf(old), s.BlockOf(new)))
	m.e.happened("migrate")
	return nil
}

func (e *ddEnv) log(s string) {
	e.mu.Lock()
	e.events = append(e.events, s)
	e.mu.Unlock()
}

// happened cancels the running offline if it waits for event ev.
func (e *ddEnv) happened(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil && e.cancelOn == ev {
		e.cancel()
	}
}

var errnoNames = map[syscall.Errno]string{syscall.EBUSY: "EBUSY", syscall.EINVAL: "EINVAL",
	syscall.EEXIST: "EEXIST", syscall.ENOMEM: "ENOMEM", syscall.EINTR: "EINTR", syscall.EPERM: "EPERM"}

func errString(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n, ok := errnoNames[errno]; ok {
			return "error: " + n
		}
	}
	return "error: " + err.Error()
}

func parseErrno(t testing.TB, s string) syscall.Errno {
	for e, n := range errnoNames {
		if n == s {
			return e
		}
	}
	t.Fatalf("unknown errno %q", s)
	return 0
}

func parseSize(t testing.TB, s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		t.Fatalf("bad size %q", s)
	}
	return n * mult
}

func argStr(td *datadriven.TestData, key, def string) string {
	if a, ok := td.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return def
}

func argInt(t testing.TB, td *datadriven.TestData, key string, def int) int {
	if a, ok := td.Arg(key); ok && len(a.Vals) > 0 {
		n, err := strconv.Atoi(a.Vals[0])
		if err != nil {
			t.Fatalf("%s: bad %s=%q", td.Pos, key, a.Vals[0])
		}
		return n
	}
	return def
}

// parseKind parses a scenario's kind= word: the sysfs words, or the short
// forms "default", "kernel" and "movable".
func parseKind(s string) (OnlineKind, error) {
	switch s {
	case "default":
		s = "online"
	case "kernel", "movable":
		s = "online_" + s
	}
	return ParseOnlineKind(s)
}

func (e *ddEnv) blocksTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-5s %-4s %-13s %-7s %-14s %4s %4s\n", "block", "node", "state", "zone", "valid_zones", "free", "used")
	for _, bi := range e.s.Blocks() {
		var vz []string
		for _, z := range bi.ValidZones {
			vz = append(vz, z.String())
		}
		zone := "-"
		if bi.State != BlockOffline {
			zone = bi.Zone.String()
		}
		fmt.Fprintf(&b, "%-5d %-4d %-13s %-7s %-14s %4d %4d\n", bi.Index, bi.Node, bi.State, zone,
			strings.Join(vz, ","), bi.FreePages, bi.UsedPages)
	}
	return b.String()
}

func (e *ddEnv) cmd(t testing.TB, td *datadriven.TestData) string {
	ctx := context.Background()
	s := e.s
	if td.Cmd != "new" && s == nil {
		t.Fatalf("%s: no system: use new first", td.Pos)
	}
	switch td.Cmd {
	case "new":
		if e.s != nil {
			e.s.Close()
		}
		cfg := Config{
			Nodes:          argInt(t, td, "nodes", 2),
			BlockSize:      parseSize(t, argStr(td, "block", "1M")),
			InitialPerNode: parseSize(t, argStr(td, "initial", "0")),
			MaxBlocks:      argInt(t, td, "max", 64),
			Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if cfg.InitialPerNode == 0 {
			cfg.InitialPerNode = -1
		}
		// The background reporter is off unless report_delay= is
		// given: a scenario's output must not depend on a clock.
		cfg.ReportingDelay = -1
		if d := argStr(td, "report_delay", ""); d != "" {
			dd, err := time.ParseDuration(d)
			if err != nil {
				t.Fatalf("%s: bad report_delay %q", td.Pos, d)
			}
			cfg.ReportingDelay = dd
		}
		cfg.ReportingOrder = argInt(t, td, "report_order", 0)
		if p := argStr(td, "policy", ""); p != "" {
			pol, err := ParsePolicy(p)
			if err != nil {
				return errString(err)
			}
			cfg.AutoOnline = pol
		}
		ns, err := New(cfg)
		if err != nil {
			return errString(err)
		}
		e.s = ns
		e.allocs = map[string]ddAlloc{}
		e.unreg = map[string]func(){}
		e.events = nil
		return fmt.Sprintf("nodes=%d block=%d max=%d policy=%v", ns.NumNodes(), ns.BlockSize(), ns.MaxBlocks(), ns.AutoOnline())
	case "add":
		ids, err := s.AddMemory(argInt(t, td, "node", 0), parseSize(t, argStr(td, "size", "0")))
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("blocks %v", ids)
	case "probe":
		addr, err := strconv.ParseUint(argStr(td, "addr", "0"), 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Probe(addr); err != nil {
			return errString(err)
		}
		return "ok"
	case "policy":
		if p := argStr(td, "set", ""); p != "" {
			pol, err := ParsePolicy(p)
			if err != nil {
				return errString(err)
			}
			s.SetAutoOnline(pol)
		}
		return s.AutoOnline().String()
	case "online":
		kind, err := parseKind(argStr(td, "kind", "online"))
		if err != nil {
			return errString(err)
		}
		if err := s.Online(ctx, argInt(t, td, "block", -1), kind); err != nil {
			return errString(err)
		}
		return "ok"
	case "offline":
		c := ctx
		if ev := argStr(td, "cancel", ""); ev != "" {
			if _, err := ParseMemoryEvent(ev); err != nil && ev != "migrate" {
				if _, err := ParseNodeEvent(ev); err != nil {
					t.Fatalf("%s: bad cancel event %q", td.Pos, ev)
				}
			}
			var cancel context.CancelFunc
			c, cancel = context.WithCancel(ctx)
			e.mu.Lock()
			e.cancelOn, e.cancel = ev, cancel
			e.mu.Unlock()
			defer func() {
				e.mu.Lock()
				e.cancelOn, e.cancel = "", nil
				e.mu.Unlock()
				cancel()
			}()
		}
		if err := s.Offline(c, argInt(t, td, "block", -1)); err != nil {
			return errString(err)
		}
		return "ok"
	case "remove":
		if err := s.RemoveMemory(argInt(t, td, "block", -1)); err != nil {
			return errString(err)
		}
		return "ok"
	case "alloc":
		var gfp GFP
		if a, ok := td.Arg("flags"); ok {
			for _, f := range a.Vals {
				switch f {
				case "movable":
					gfp |= GFPMovable
				case "thisnode":
					gfp |= GFPThisNode
				case "zero":
					gfp |= GFPZero
				default:
					t.Fatalf("bad flag %q", f)
				}
			}
		}
		name := argStr(td, "name", "")
		order := argInt(t, td, "order", 0)
		addr, err := s.AllocPages(argInt(t, td, "node", NumaNoNode), order, gfp)
		if err != nil {
			return errString(err)
		}
		s.bytes(addr, 1)[0] = byte(len(name))
		e.allocs[name] = ddAlloc{addr, order}
		if td.HasArg("migrator") {
			s.SetMigrator(addr, ddMigrator{e, name})
		}
		return fmt.Sprintf("%s: block %d node %d", name, s.BlockOf(addr), s.PageNode(addr))
	case "free":
		name := argStr(td, "name", "")
		a, ok := e.allocs[name]
		if !ok {
			t.Fatalf("%s: no allocation %q", td.Pos, name)
		}
		if got := s.bytes(a.addr, 1)[0]; got != byte(len(name)) {
			return fmt.Sprintf("content lost: %d", got)
		}
		if err := s.FreePages(a.addr, argInt(t, td, "order", a.order)); err != nil {
			return errString(err)
		}
		delete(e.allocs, name)
		return "ok"
	case "where":
		name := argStr(td, "name", "")
		a := e.allocs[name]
		return fmt.Sprintf("%s: block %d node %d", name, s.BlockOf(a.addr), s.PageNode(a.addr))
	case "notifier":
		name := argStr(td, "name", "")
		prio := argInt(t, td, "prio", 0)
		var failMem = MemoryEvent(-1)
		var failNode = NodeEvent(-1)
		var errno syscall.Errno = syscall.EPERM
		if f := argStr(td, "fail", ""); f != "" {
			if me, err := ParseMemoryEvent(f); err == nil {
				failMem = me
			} else if ne, err := ParseNodeEvent(f); err == nil {
				failNode = ne
			} else {
				t.Fatalf("bad event %q", f)
			}
		}
		if en := argStr(td, "errno", ""); en != "" {
			errno = parseErrno(t, en)
		}
		var frees []string
		if a, ok := td.Arg("free"); ok {
			frees = a.Vals
		}
		u1 := s.RegisterMemoryNotifier(name, prio, func(ev MemoryEvent, a MemoryNotify) error {
			e.log(fmt.Sprintf("%s: %v block=%d node=%d pfn=%d pages=%d", name, ev, a.Block, a.Node, a.StartPFN, a.NrPages))
			defer e.happened(ev.String())
			if ev == MemGoingOffline {
				// Like slab flushing its caches: free pages of the
				// block going offline from inside the callback.
				for _, f := range frees {
					if x, ok := e.allocs[f]; ok && s.BlockOf(x.addr) == a.Block {
						if err := s.FreePages(x.addr, x.order); err != nil {
							return err
						}
						delete(e.allocs, f)
						e.log(fmt.Sprintf("%s: freed %s", name, f))
					}
				}
			}
			if ev == failMem {
				return errno
			}
			return nil
		})
		u2 := s.RegisterNodeNotifier(name, prio, func(ev NodeEvent, nid int) error {
			e.log(fmt.Sprintf("%s: %v node=%d", name, ev, nid))
			defer e.happened(ev.String())
			if ev == failNode {
				return errno
			}
			return nil
		})
		e.unreg[name] = func() { u1(); u2() }
		return "ok"
	case "unregister":
		name := argStr(td, "name", "")
		e.unreg[name]()
		delete(e.unreg, name)
		return "ok"
	case "events":
		e.mu.Lock()
		defer e.mu.Unlock()
		out := strings.Join(e.events, "\n")
		e.events = nil
		if out == "" {
			return "(none)"
		}
		return out
	case "blocks":
		return e.blocksTable()
	case "nodes":
		var b strings.Builder
		for n := 0; n < s.NumNodes(); n++ {
			fmt.Fprintf(&b, "node%d: has_memory=%v has_normal_memory=%v\n", n, s.NodeHasMemory(n), s.NodeHasNormalMemory(n))
		}
		return b.String()
	case "stats":
		s.DrainPages()
		st := s.Stats()
		var b strings.Builder
		for _, z := range st.Zones {
			fmt.Fprintf(&b, "node%d %-7s managed=%d free=%d\n", z.Node, z.Zone, z.Managed, z.Free)
		}
		fmt.Fprintf(&b, "present_blocks=%d online_blocks=%d\n", st.PresentBlocks, st.OnlineBlocks)
		return b.String()
	case "report":
		n, err := s.ReportFreePages(ctx)
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("reported %d bytes (%d pages)", n, n/PageSize)
	case "reporting":
		if td.HasArg("order") {
			if err := s.SetReportingOrder(argInt(t, td, "order", 0)); err != nil {
				return errString(err)
			}
		}
		return fmt.Sprintf("order=%d delay=%v", s.ReportingOrder(), s.ReportingDelay())
	case "reported":
		s.DrainPages()
		st := s.Stats()
		var b strings.Builder
		for _, z := range st.Zones {
			fmt.Fprintf(&b, "node%d %-7s free=%d reported=%d\n", z.Node, z.Zone, z.Free, z.Reported)
		}
		fmt.Fprintf(&b, "reported_bytes=%d\n", st.ReportedBytes)
		return b.String()
	case "fill", "check", "resident":
		// fill: write the allocation (but for the byte alloc wrote);
		// check: are those bytes zeros? resident: its pages in RAM.
		name := argStr(td, "name", "")
		a, ok := e.allocs[name]
		if !ok {
			t.Fatalf("%s: no allocation %q", td.Pos, name)
		}
		b := s.bytes(a.addr, PageSize<<a.order)
		switch td.Cmd {
		case "fill":
			for i := 1; i < len(b); i++ {
				b[i] = 0xa5
			}
			return "ok"
		case "check":
			for i := 1; i < len(b); i++ {
				if b[i] != 0 {
					return fmt.Sprintf("data at byte %d", i)
				}
			}
			return "zeros"
		}
		return fmt.Sprintf("%d of %d pages resident", residentPages(t, s, a.addr, PageSize<<a.order), 1<<a.order)
	case "allocs":
		var names []string
		for n := range e.allocs {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			a := e.allocs[n]
			fmt.Fprintf(&b, "%s: block %d order %d\n", n, s.BlockOf(a.addr), a.order)
		}
		return b.String()
	}
	t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	return ""
}

func TestDataDriven(t *testing.T) {
	// One P: a scenario's order-0 pages come from, and go back to, one
	// per-P list, whatever P the test goroutine would otherwise move to
	// (the reporting scenario's counts depend on it).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := &ddEnv{}
		defer func() {
			if e.s != nil {
				e.s.Close()
			}
		}()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return e.cmd(t, td)
		})
	})
}
