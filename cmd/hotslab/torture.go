// hotslab torture: a randomised concurrent mix of everything, checked.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/fault"
	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
	"github.com/hotslab/hotslab/sysfs"
)

// torture is one run's shared state.
type torture struct {
	sys  *mem.System
	a    *slab.Allocator
	tree *sysfs.Tree
	seed uint64

	ops, hotplug, failed atomic.Int64
	violations           atomic.Int64
	firstMu              sync.Mutex
	first                string

	cachesMu sync.Mutex
	caches   []*slab.Cache // the shared caches workers use (never destroyed before the end)
	groupsMu sync.Mutex
	groups   []*memcg.Group // live tenant groups
}

// violation records a broken invariant (the first one is printed last).
func (t *torture) violation(format string, args ...any) {
	t.violations.Add(1)
	t.firstMu.Lock()
	if t.first == "" {
		t.first = fmt.Sprintf(format, args...)
	}
	t.firstMu.Unlock()
}

func cmdTorture(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("torture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("duration", 30*time.Second, "how long to run")
	seedFlag := fs.Uint64("seed", 0, "random seed (0: from the clock; printed, to reproduce a run)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "allocating goroutines")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 || *dur <= 0 || *workers < 1 {
		return usageError{"torture: usage: hotslab torture [-duration D] [-seed N] [-workers N]"}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	lockdep.Enable()
	reportsBefore := lockdep.ReportCount()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 8 << 20, MaxBlocks: 64, Logger: log})
	if err != nil {
		return err
	}
	defer sys.Close()
	// Shuffled slabs (torture's validations walk them), and one debug
	// cache (F, Z, P: every operation checked), whose every report is a
	// violation.
	var tref *torture
	// torture never frees an object twice or a foreign one: every
	// refused free is a violation.
	a, err := slab.New(sys, &slab.Options{Logger: log, OnInvalidFree: func(f *slab.InvalidFree) { tref.violation("refused free: %v", f) }, RandomOrder: true,
		Debug: "FZP,torture-4", OnDebugReport: func(r *slab.DebugReport) { tref.violation("%s", r.Text) }})
	if err != nil {
		return err
	}
	t := &torture{sys: sys, a: a, tree: sysfs.NewTree(), seed: seed}
	tref = t
	var stops []func()
	for _, add := range []func() (func(), error){
		func() (func(), error) { return sysfs.AddMemory(t.tree, sys) },
		func() (func(), error) { return sysfs.AddSlab(t.tree, a) },
		func() (func(), error) { return sysfs.AddCgroup(t.tree, a.Memcg()) },
		func() (func(), error) { return sysfs.AddNotifierErrorInject(t.tree, sys) },
		func() (func(), error) { return func() {}, sysfs.AddFaultInjection(t.tree, sys, a) },
	} {
		stop, err := add()
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	// Fault injection on: rare failslab and fail_page_alloc failures,
	// which the workload must survive.
	for _, at := range []*fault.Attr{a.Failslab(), sys.FailPageAlloc()} {
		at.SetVerbose(0)
		at.SetTimes(-1)
		at.SetInterval(97)
		at.SetProbability(5)
	}
	for i, spec := range []struct {
		size int
		fl   slab.Flags
	}{{16, 0}, {64, slab.NoMerge}, {200, slab.Account}, {1000, slab.Account | slab.ReclaimAccount}, {3000, slab.HWCacheAlign}} {
		c, err := a.NewCache("torture-"+strconv.Itoa(i), spec.size, &slab.CacheOptions{Flags: spec.fl})
		if err != nil {
			return err
		}
		t.caches = append(t.caches, c)
	}
	for i := 0; i < 3; i++ {
		g, err := a.Memcg().Root().Create("tenant-" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		t.groups = append(t.groups, g)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	fmt.Fprintf(stdout, "torture: seed=%d duration=%v workers=%d\n", seed, *dur, *workers)
	var wg sync.WaitGroup
	run := func(name string, f func(ctx context.Context, r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					t.violation("%s panicked: %v", name, v)
				}
			}()
			f(ctx, rand.New(rand.NewPCG(seed, uint64(len(name))*7919+uint64(name[0]))))
		}()
	}
	for w := 0; w < *workers; w++ {
		w := w
		run("worker"+strconv.Itoa(w), func(ctx context.Context, r *rand.Rand) { t.worker(ctx, r, w) })
	}
	run("hotplug", t.hotplugLoop)
	run("hotplug2", t.hotplugLoop)
	run("sysfs-hotplug", t.sysfsHotplug)
	run("caches", t.cacheChurn)
	run("memcg", t.memcgChurn)
	run("inject", t.injectLoop)
	wg.Wait()

	// Teardown and the invariants.
	for _, at := range []*fault.Attr{a.Failslab(), sys.FailPageAlloc()} {
		at.SetProbability(0)
	}
	for _, c := range t.caches {
		c.Shrink()
		if err := c.Validate(); err != nil {
			t.violation("validate: %v", err)
		}
		if err := c.Destroy(); err != nil {
			t.violation("leak: %v", err)
		}
	}
	a.Memcg().Drain()
	for _, g := range append([]*memcg.Group{a.Memcg().Root()}, t.groups...) {
		if g.Current() != 0 {
			t.violation("leak: group %s still charged %d bytes", g.Path(), g.Current())
		}
		if u, rcl := g.Slab(-1); u != 0 || rcl != 0 {
			t.violation("group %s slab statistics %d+%d after teardown", g.Path(), u, rcl)
		}
	}
	for _, stop := range stops {
		stop()
	}
	a.Close()
	sys.DrainPages()
	st := sys.Stats()
	online := int64(0)
	for _, b := range sys.Blocks() {
		if b.State == mem.BlockOnline {
			online += sys.BlockSize() / mem.PageSize
		}
	}
	var present, free int64
	for _, z := range st.Zones {
		present += z.Present
		free += z.Free
	}
	if present != online || free != present {
		t.violation("memory not all accounted after teardown: %d pages online, %d present, %d free", online, present, free)
	}
	if n := lockdep.ReportCount() - reportsBefore; n > 0 {
		t.violation("lockdep: %d reports; first:\n%s", n, lockdep.Reports()[reportsBefore].Text)
	}
	fmt.Fprintf(stdout, "torture: %d object operations (%d failed as injected or at a limit), %d hotplug transitions\n",
		t.ops.Load(), t.failed.Load(), t.hotplug.Load())
	if v := t.violations.Load(); v > 0 {
		fmt.Fprintf(stdout, "torture: FAIL ops=%d hotplug=%d violations=%d seed=%d: %s\n", t.ops.Load(), t.hotplug.Load(), v, seed, t.first)
		return fmt.Errorf("torture: %d violations (reproduce with -seed %d)", v, seed)
	}
	fmt.Fprintf(stdout, "torture: PASS ops=%d hotplug=%d violations=0 seed=%d\n", t.ops.Load(), t.hotplug.Load(), seed)
	return nil
}

// allocFailed counts a failed allocation: ENOMEM (injected, at a group's
// limit, or out of memory) is expected, anything else a violation.
func (t *torture) allocFailed(c *slab.Cache, err error) {
	t.failed.Add(1)
	if !errors.Is(err, syscall.ENOMEM) {
		t.violation("allocation from %s: unexpected error %v", c.Name(), err)
	}
}

// tobj is a live object with its pattern.
type tobj struct {
	c    *slab.Cache
	p    unsafe.Pointer
	size int
	tag  uint64
}

// fill writes the pattern: the tag in the first and last words (the whole
// object for small ones).
func fill(o tobj) {
	if o.size <= 64 {
		b := unsafe.Slice((*uint64)(o.p), o.size/8)
		for i := range b {
			b[i] = o.tag
		}
		return
	}
	*(*uint64)(o.p) = o.tag
	*(*uint64)(unsafe.Add(o.p, o.size-8)) = o.tag
}

func (t *torture) check(o tobj) {
	ok := true
	if o.size <= 64 {
		for _, w := range unsafe.Slice((*uint64)(o.p), o.size/8) {
			ok = ok && w == o.tag
		}
	} else {
		ok = *(*uint64)(o.p) == o.tag && *(*uint64)(unsafe.Add(o.p, o.size-8)) == o.tag
	}
	if !ok {
		name := "kmalloc"
		if o.c != nil {
			name = o.c.Name()
		}
		t.violation("object %p of %s: pattern overwritten", o.p, name)
	}
}

// worker: single, bulk, node, magazine, group and kmalloc allocations,
// every object pattern-checked before its free.
func (t *torture) worker(ctx context.Context, r *rand.Rand, w int) {
	var live []tobj
	mags := map[*slab.Cache]*slab.Magazine{}
	defer func() {
		for _, o := range live {
			t.check(o)
			o.c.Free(o.p)
		}
		for _, m := range mags {
			m.Close()
		}
	}()
	bulk := make([]unsafe.Pointer, 16)
	tag := uint64(w)<<48 | 1
	for i := 0; ctx.Err() == nil; i++ {
		// The last cache is the debug one: slow (every operation to the
		// slab, checked), so picked one time in 256.
		c := t.caches[r.IntN(len(t.caches)-1)]
		if r.IntN(256) == 0 {
			c = t.caches[len(t.caches)-1]
		}
		size := c.ObjectSize() &^ 7
		tag++
		var p unsafe.Pointer
		var err error
		switch op := r.IntN(10); {
		case op < 4:
			p, err = c.Alloc()
		case op == 4:
			p, err = c.AllocNode(r.IntN(2), 0)
		case op == 5:
			t.groupsMu.Lock()
			g := t.groups[r.IntN(len(t.groups))]
			t.groupsMu.Unlock()
			p, err = c.In(g).Alloc() // ErrInvalid for caches without Account
			if errors.Is(err, slab.ErrInvalid) {
				p, err = c.Alloc()
			}
		case op == 6:
			m := mags[c]
			if m == nil {
				if m, err = c.NewMagazine(0); errors.Is(err, slab.ErrInvalid) {
					p, err = c.Alloc() // a debug cache has no magazines
					break
				} else if err != nil {
					break
				}
				mags[c] = m
			}
			if p = m.Alloc(); p == nil {
				err = m.Err()
			} else {
				o := tobj{c, p, size, tag}
				fill(o)
				t.check(o)
				m.Free(p)
				t.ops.Add(2)
				continue
			}
		case op == 7:
			if err = c.AllocBulk(bulk); err == nil {
				for j, q := range bulk {
					o := tobj{c, q, size, tag + uint64(j)}
					fill(o)
					t.check(o)
				}
				c.FreeBulk(bulk)
				t.ops.Add(2 * int64(len(bulk)))
				continue
			}
		default:
			ks := 8 + r.IntN(4000)
			if p, err = t.a.Kmalloc(ks, 0); err == nil {
				o := tobj{nil, p, ks &^ 7, tag}
				fill(o)
				t.check(o)
				t.a.Kfree(p)
				t.ops.Add(2)
				continue
			}
		}
		if err != nil {
			t.allocFailed(c, err)
			continue
		}
		o := tobj{c, p, size, tag}
		fill(o)
		live = append(live, o)
		t.ops.Add(1)
		if len(live) > 2000 || r.IntN(2) == 0 {
			j := r.IntN(len(live))
			t.check(live[j])
			live[j].c.Free(live[j].p)
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			t.ops.Add(1)
		}
	}
}

// hotplugLoop adds, onlines (both zones), offlines and removes blocks
// through the API.
func (t *torture) hotplugLoop(ctx context.Context, r *rand.Rand) {
	sys := t.sys
	initial := 8 // 4 blocks per node
	for ctx.Err() == nil {
		blocks := sys.Blocks()
		if len(blocks) < 16 && r.IntN(4) == 0 {
			if _, err := sys.AddMemory(r.IntN(2), 2<<20); err == nil {
				t.hotplug.Add(1)
			}
			continue
		}
		b := blocks[r.IntN(len(blocks))]
		var err error
		switch b.State {
		case mem.BlockOnline:
			err = sys.Offline(ctx, b.Index)
		case mem.BlockOffline:
			if b.Index >= initial && r.IntN(4) == 0 {
				err = sys.RemoveMemory(b.Index)
			} else {
				// Mostly movable (what slab never uses, so offline
				// succeeds), sometimes kernel (slab moves in: offline
				// then meets EBUSY), sometimes the default zone.
				kind := mem.OnlineMovable
				if x := r.IntN(8); x == 0 {
					kind = mem.OnlineKernel
				} else if x == 1 {
					kind = mem.OnlineDefault
				}
				err = sys.Online(ctx, b.Index, kind)
			}
		default:
			continue
		}
		t.hotplugResult(ctx, err)
	}
}

func (t *torture) hotplugResult(ctx context.Context, err error) {
	switch {
	case err == nil:
		t.hotplug.Add(1)
	case errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EINVAL),
		errors.Is(err, syscall.EINTR), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.EIO),
		errors.Is(err, syscall.EAGAIN):
		// refused: busy, injected, raced with another transition
	default:
		if ctx.Err() == nil {
			t.violation("hotplug: unexpected error %v", err)
		}
	}
}

// sysfsHotplug drives the same transitions through the views' files.
func (t *torture) sysfsHotplug(ctx context.Context, r *rand.Rand) {
	words := []string{"online", "online_kernel", "online_movable", "online_movable", "online_movable", "offline", "offline", "garbage"}
	for ctx.Err() == nil {
		blocks := t.sys.Blocks()
		b := blocks[r.IntN(len(blocks))]
		dir := t.tree.Root().Walk("sys/devices/system/memory/memory" + strconv.Itoa(b.Index))
		if dir == nil {
			continue
		}
		name, word := "state", words[r.IntN(len(words))]
		if r.IntN(3) == 0 {
			name, word = "online", []string{"1", "0", "y", "off"}[r.IntN(4)]
		}
		n := dir.Lookup(name)
		if n == nil {
			continue
		}
		err := n.Write(ctx, word)
		if word == "garbage" {
			if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENODEV) {
				t.violation("sysfs: garbage to %s: %v", n.Path(), err)
			}
			continue
		}
		t.hotplugResult(ctx, err)
		if _, err := n.Read(); err != nil && !errors.Is(err, syscall.ENODEV) {
			t.violation("sysfs: read %s: %v", n.Path(), err)
		}
	}
}

// cacheChurn creates, merges, uses, shrinks and destroys caches of its
// own.
func (t *torture) cacheChurn(ctx context.Context, r *rand.Rand) {
	for i := 0; ctx.Err() == nil; i++ {
		fl := []slab.Flags{0, slab.NoMerge, slab.Account, slab.ReclaimAccount}[r.IntN(4)]
		size := 8 + r.IntN(2048)
		c, err := t.a.NewCache("churn-"+strconv.Itoa(i), size, &slab.CacheOptions{Flags: fl})
		if err != nil {
			t.violation("cache create: %v", err)
			return
		}
		var objs []tobj
		for j := 0; j < r.IntN(200); j++ {
			p, err := c.Alloc()
			if err != nil {
				t.allocFailed(c, err)
				continue
			}
			o := tobj{c, p, size &^ 7, uint64(i)<<32 | uint64(j) | 1}
			fill(o)
			objs = append(objs, o)
		}
		t.ops.Add(int64(len(objs)))
		c.Shrink()
		if err := c.Validate(); err != nil {
			t.violation("validate %s: %v", c.Name(), err)
		}
		for _, o := range objs {
			t.check(o)
			c.Free(o.p)
		}
		t.ops.Add(int64(len(objs)))
		if err := c.Destroy(); err != nil {
			t.violation("destroy %s: %v", c.Name(), err)
		}
	}
}

// memcgChurn creates and removes groups under the tenants, sets limits,
// and runs a tenant whose shrinker frees its cached objects at its limit.
func (t *torture) memcgChurn(ctx context.Context, r *rand.Rand) {
	ctrl := t.a.Memcg()
	var mu sync.Mutex
	var cached []tobj
	cache := t.caches[3] // accounted, reclaimable
	g, err := ctrl.Root().Create("shrinking")
	if err != nil {
		t.violation("memcg: %v", err)
		return
	}
	t.groupsMu.Lock()
	t.groups = append(t.groups, g)
	t.groupsMu.Unlock()
	s := &memcg.Shrinker{Name: "torture", MemcgAware: true,
		Count: func(sc *memcg.ShrinkControl) uint64 {
			if sc.Group != g {
				return 0
			}
			mu.Lock()
			defer mu.Unlock()
			return uint64(len(cached))
		},
		Scan: func(sc *memcg.ShrinkControl) uint64 {
			mu.Lock()
			defer mu.Unlock()
			n := min(int(sc.NrToScan), len(cached))
			for _, o := range cached[:n] {
				t.check(o)
				o.c.Free(o.p)
			}
			cached = cached[n:]
			return uint64(n)
		}}
	if err := ctrl.RegisterShrinker(s); err != nil {
		t.violation("memcg: %v", err)
		return
	}
	defer func() {
		ctrl.UnregisterShrinker(s)
		for _, o := range cached {
			t.check(o)
			o.c.Free(o.p)
		}
	}()
	g.SetMax(256 << 10)
	for i := 0; ctx.Err() == nil; i++ {
		switch r.IntN(4) {
		case 0: // a short-lived child with a limit
			parent := t.groups[r.IntN(3)]
			ch, err := parent.Create("child-" + strconv.Itoa(i))
			if err != nil {
				t.violation("memcg create: %v", err)
				continue
			}
			ch.SetMax(int64(1+r.IntN(64)) << 12)
			for j := 0; j < 20; j++ {
				p, err := cache.In(ch).Alloc()
				if err != nil {
					t.allocFailed(cache, err)
					break
				}
				o := tobj{cache, p, cache.ObjectSize() &^ 7, uint64(i)<<20 | uint64(j) | 1}
				fill(o)
				if j%2 == 0 {
					t.check(o)
					cache.Free(p)
				} else {
					mu.Lock()
					cached = append(cached, o) // outlives its group: reparented
					mu.Unlock()
				}
			}
			if err := ch.Remove(); err != nil {
				t.violation("memcg remove: %v", err)
			}
		case 1:
			t.groups[r.IntN(3)].SetMax(int64(64+r.IntN(4096)) << 10)
		default: // the shrinking tenant allocates through its limit
			p, err := cache.In(g).Alloc()
			if err != nil {
				t.allocFailed(cache, err)
				continue
			}
			o := tobj{cache, p, cache.ObjectSize() &^ 7, uint64(i) | 1}
			fill(o)
			mu.Lock()
			cached = append(cached, o)
			mu.Unlock()
			t.ops.Add(1)
		}
	}
}

// injectLoop turns the memory notifier error injection on and off.
func (t *torture) injectLoop(ctx context.Context, r *rand.Rand) {
	files := []string{"MEM_GOING_ONLINE", "MEM_GOING_OFFLINE"}
	for ctx.Err() == nil {
		n := t.tree.Root().Walk("sys/kernel/debug/notifier-error-inject/memory/actions/" + files[r.IntN(2)] + "/error")
		v := "0"
		if r.IntN(16) == 0 { // on a sixteenth of the time: most transitions must get through
			v = []string{"-16", "-12", "-5"}[r.IntN(3)]
		}
		if err := n.Write(ctx, v); err != nil {
			t.violation("inject: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	for _, f := range files {
		t.tree.Root().Walk("sys/kernel/debug/notifier-error-inject/memory/actions/"+f+"/error").Write(context.Background(), "0")
	}
}
