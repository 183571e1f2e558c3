// hotslab run: the live system — the workload, the hotplug driver, the
// memcg tenants, the views over FUSE, the status and the verification.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/memcg"
	"github.com/hotslab/hotslab/slab"
	"github.com/hotslab/hotslab/sysfs"
)

type workCache struct {
	c    *slab.Cache
	size int
	acct bool
}

// tenant is a memcg group the workload charges.
type tenant struct {
	g       *memcg.Group
	atLimit atomic.Int64 // allocations refused at memory.max
}

// counters are the workload's and the verification's.
type counters struct {
	ops, enomem, checked, corrupt atomic.Int64
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	return cmdRunCtx(context.Background(), args, stdout, stderr)
}

// cmdRunCtx is cmdRun ending when parent is done too (tests).
func cmdRunCtx(parent context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "JSON configuration file (default: the embedded one)")
	durFlag := fs.String("duration", "", "how long to run (overrides the config; 0 = until interrupted)")
	sysfsDir := fs.String("sysfs", "auto", `where to mount the views ("auto": a new temporary directory; "": none)`)
	printCfg := fs.Bool("print-config", false, "print the effective configuration and exit")
	verbose := fs.Bool("v", false, "log hotplug events")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("run: unexpected arguments %q", fs.Args())}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *durFlag != "" {
		cfg.Duration = *durFlag
	}
	if *printCfg {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	}
	blockSize, err := parseSize(cfg.BlockSize)
	if err != nil {
		return fmt.Errorf("block_size: %w", err)
	}
	initial, err := parseSize(cfg.InitialPerNode)
	if err != nil {
		return fmt.Errorf("initial_per_node: %w", err)
	}
	policy, err := mem.ParsePolicy(cfg.AutoOnline)
	if err != nil {
		return fmt.Errorf("auto_online: %w", err)
	}
	dur, err := time.ParseDuration(cfg.Duration)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	report, err := time.ParseDuration(cfg.ReportInterval)
	if err != nil || report <= 0 {
		return fmt.Errorf("report_interval %q: must be a positive duration", cfg.ReportInterval)
	}
	hpEvery, err := time.ParseDuration(cfg.HotplugInterval)
	if err != nil || hpEvery <= 0 {
		return fmt.Errorf("hotplug_interval %q: must be a positive duration", cfg.HotplugInterval)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The validator checks every lock the run takes; its reports count
	// as violations.
	lockdep.Enable()
	reportsBefore := lockdep.ReportCount()

	sys, err := mem.New(mem.Config{Nodes: cfg.Nodes, BlockSize: blockSize, InitialPerNode: initial, AutoOnline: policy, Logger: log})
	if err != nil {
		return err
	}
	defer sys.Close()
	a, err := slab.New(sys, &slab.Options{Logger: log, Debug: cfg.SlabDebug})
	if err != nil {
		return err
	}
	defer a.Close()
	var caches []workCache
	for _, cc := range cfg.Caches {
		var fl slab.Flags
		for _, f := range cc.Flags {
			v, ok := flagNames[f]
			if !ok {
				return fmt.Errorf("cache %q: unknown flag %q", cc.Name, f)
			}
			fl |= v
		}
		c, err := a.NewCache(cc.Name, cc.Size, &slab.CacheOptions{Flags: fl})
		if err != nil {
			return err
		}
		caches = append(caches, workCache{c, cc.Size, fl&slab.Account != 0})
	}
	if len(caches) == 0 {
		return errors.New("no caches configured")
	}
	var tenants []*tenant
	for _, tc := range cfg.Tenants {
		g, err := a.Memcg().Root().Create(tc.Name)
		if err != nil {
			return fmt.Errorf("tenant %q: %w", tc.Name, err)
		}
		for file, v := range map[string]string{"memory.max": tc.Max, "memory.high": tc.High} {
			if v == "" {
				continue
			}
			if err := g.WriteFile(file, v); err != nil {
				return fmt.Errorf("tenant %q: %s %q: %w", tc.Name, file, v, err)
			}
		}
		tenants = append(tenants, &tenant{g: g})
	}

	// The views.
	var mount *sysfs.Mount
	var stopViews []func()
	if *sysfsDir != "" {
		dir := *sysfsDir
		if dir == "auto" {
			if dir, err = os.MkdirTemp("", "hotslab-sysfs-"); err != nil {
				return err
			}
			defer os.Remove(dir)
		}
		tree := sysfs.NewTree()
		for _, add := range []func() (func(), error){
			func() (func(), error) { return sysfs.AddMemory(tree, sys) },
			func() (func(), error) { return sysfs.AddSlab(tree, a) },
			func() (func(), error) { return sysfs.AddCgroup(tree, a.Memcg()) },
			func() (func(), error) { return sysfs.AddNotifierErrorInject(tree, sys) },
			func() (func(), error) { return func() {}, sysfs.AddFaultInjection(tree, sys, a) },
		} {
			stop, err := add()
			if err != nil {
				return err
			}
			stopViews = append(stopViews, stop)
		}
		if mount, err = sysfs.MountTree(dir, tree); err != nil {
			if *sysfsDir != "auto" {
				return fmt.Errorf("mount the views on %s: %w", dir, err)
			}
			fmt.Fprintf(stdout, "hotslab: views not mounted (%v): running the workload without them\n", err)
		} else {
			fmt.Fprintf(stdout, "hotslab: views mounted at %s; try:\n", dir)
			fmt.Fprintf(stdout, "  lsmem --sysroot %s\n", dir)
			fmt.Fprintf(stdout, "  unshare -m sh -c 'mount --bind %s/sys/devices/system/memory /sys/devices/system/memory && chmem -d -b 2'\n", dir)
			fmt.Fprintf(stdout, "  unshare -m sh -c 'mount --bind %s/proc/slabinfo /proc/slabinfo && slabtop -o'\n", dir)
			fmt.Fprintf(stdout, "  hotslab cgroup -sysfs %s list\n", dir)
		}
	}
	unmount := func() error {
		var err error
		if mount != nil {
			err = mount.Unmount()
			mount = nil
		}
		for _, stop := range stopViews {
			stop()
		}
		stopViews = nil
		return err
	}
	defer unmount()

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	fmt.Fprintf(stdout, "hotslab: %d nodes, %d MiB blocks, %d MiB per node, auto-online %s, %d caches, %d tenants, %d workers\n",
		sys.NumNodes(), blockSize>>20, initial>>20, policy, len(caches), len(tenants), cfg.Workers)

	var cnt counters
	var wg sync.WaitGroup
	for w := 0; w < max(cfg.Workers, 1); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			worker(ctx, w, caches, tenants, &cnt)
		}(w)
	}
	var hp hotplugStats
	wg.Add(1)
	go func() {
		defer wg.Done()
		hotplugDriver(ctx, sys, hpEvery, blockSize, initial/blockSize, &hp)
	}()
	tty := isTerminal(stdout)
	every := report
	if tty {
		every = 500 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	lastOps, lastT := int64(0), start
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		now := time.Now()
		ops := cnt.ops.Load()
		rate := float64(ops-lastOps) / now.Sub(lastT).Seconds()
		lastOps, lastT = ops, now
		if tty {
			fmt.Fprintf(stdout, "\r%s", statusLine(sys, tenants, rate, &hp))
			continue
		}
		fmt.Fprintf(stdout, "\n--- %.1fs: %d alloc/free ops (%.0f/s), %d ENOMEM; hotplug: %s\n",
			now.Sub(start).Seconds(), ops, rate, cnt.enomem.Load(), hp.String())
		printBlocks(stdout, sys)
		if err := a.WriteSlabinfo(stdout); err != nil {
			return err
		}
		for _, t := range tenants {
			fmt.Fprintf(stdout, "tenant %-10s current %8d max %s refused at max %d\n", t.g.Name(), t.g.Current(), limitString(t.g.Max()), t.atLimit.Load())
		}
	}
	if tty {
		fmt.Fprintln(stdout)
	}
	wg.Wait()
	// Verification: everything freed and destroyed, every counter back
	// to zero, no object found damaged, no lockdep report.
	umErr := unmount()
	leaks := 0
	for _, wc := range caches {
		wc.c.Shrink()
		if err := wc.c.Destroy(); err != nil {
			fmt.Fprintf(stdout, "hotslab: leak: %v\n", err)
			leaks++
		}
	}
	// A merged name's Destroy does not look for objects (its cache lives
	// on): every cache, kmalloc ones included, must be empty now.
	for _, ci := range a.Caches() {
		ci.Shrink()
		if st := ci.Stats(); st.ActiveObjects() != 0 {
			fmt.Fprintf(stdout, "hotslab: leak: cache %s has %d objects in use\n", ci.Name, st.ActiveObjects())
			leaks++
		}
	}
	a.Memcg().Drain()
	for _, t := range tenants {
		if cur := t.g.Current(); cur != 0 {
			fmt.Fprintf(stdout, "hotslab: leak: tenant %s still charged %d bytes\n", t.g.Name(), cur)
			leaks++
		}
	}
	reports := lockdep.ReportCount() - reportsBefore
	fmt.Fprintf(stdout, "hotslab: %d ops, hotplug: %s\n", cnt.ops.Load(), hp.String())
	fmt.Fprintf(stdout, "verification: objects checked %d, corruption %d, leaks %d, lockdep reports %d\n",
		cnt.checked.Load(), cnt.corrupt.Load(), leaks, reports)
	if umErr != nil {
		return umErr
	}
	if cnt.corrupt.Load() != 0 || leaks != 0 || reports != 0 {
		return errors.New("verification failed")
	}
	return nil
}

func limitString(n int64) string {
	if n == 1<<63-1 {
		return "max"
	}
	return fmt.Sprint(n)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// statusLine is the live one-line status: ops/s, memory online per node,
// blocks online, tenants at their limit.
func statusLine(sys *mem.System, tenants []*tenant, rate float64, hp *hotplugStats) string {
	perNode := make([]int64, sys.NumNodes())
	online := 0
	for _, b := range sys.Blocks() {
		if b.State == mem.BlockOnline {
			perNode[b.Node] += sys.BlockSize()
			online++
		}
	}
	var nodes []string
	for n, v := range perNode {
		nodes = append(nodes, fmt.Sprintf("N%d %dM", n, v>>20))
	}
	atLimit := 0
	for _, t := range tenants {
		if t.g.Current()+4096 >= t.g.Max() {
			atLimit++
		}
	}
	return fmt.Sprintf("%9.0f ops/s | %s | %d blocks online | %d/%d tenants at limit | hotplug %d   ",
		rate, strings.Join(nodes, " "), online, atLimit, len(tenants), hp.transitions())
}

// worker allocates objects into a working set, writing a pattern over
// each, and frees them at random, checking the pattern first; objects of
// accounted caches are charged to the tenants in turn.
func worker(ctx context.Context, w int, caches []workCache, tenants []*tenant, cnt *counters) {
	r := rand.New(rand.NewPCG(uint64(w), 42))
	type obj struct {
		wc  *workCache
		p   unsafe.Pointer
		tag byte
	}
	var set []obj
	check := func(o obj) {
		b := unsafe.Slice((*byte)(o.p), o.wc.size)
		for _, x := range b {
			if x != o.tag {
				cnt.corrupt.Add(1)
				break
			}
		}
		cnt.checked.Add(1)
		o.wc.c.Free(o.p)
	}
	for n := 0; ctx.Err() == nil; n++ {
		wc := &caches[r.IntN(len(caches))]
		var p unsafe.Pointer
		var err error
		var t *tenant
		if wc.acct && len(tenants) > 0 {
			t = tenants[n%len(tenants)]
			p, err = wc.c.In(t.g).Alloc()
		} else {
			p, err = wc.c.Alloc()
		}
		if err == nil {
			tag := byte(n) | 1
			b := unsafe.Slice((*byte)(p), wc.size)
			for i := range b {
				b[i] = tag
			}
			set = append(set, obj{wc, p, tag})
		} else if t != nil && errors.Is(err, memcg.ErrNoMemory) && t.g.Current() >= t.g.Max()-int64(4*wc.size) {
			t.atLimit.Add(1)
		} else {
			cnt.enomem.Add(1)
			time.Sleep(time.Millisecond)
		}
		if len(set) > 20000 || (len(set) > 0 && r.IntN(2) == 0) {
			i := r.IntN(len(set))
			check(set[i])
			set[i] = set[len(set)-1]
			set = set[:len(set)-1]
		}
		if n%1024 == 0 {
			cnt.ops.Add(1024)
		}
	}
	for _, o := range set {
		check(o)
	}
}

type hotplugStats struct {
	added, removed, onlined, offlined, busy atomic.Int64
}

func (h *hotplugStats) transitions() int64 {
	return h.added.Load() + h.removed.Load() + h.onlined.Load() + h.offlined.Load()
}

func (h *hotplugStats) String() string {
	return fmt.Sprintf("%d added, %d removed, %d onlined, %d offlined, %d busy",
		h.added.Load(), h.removed.Load(), h.onlined.Load(), h.offlined.Load(), h.busy.Load())
}

// hotplugDriver adds a block to each node, then keeps offlining and
// onlining random blocks, now and then removing an offline block beyond
// the initial ones and adding one back.
func hotplugDriver(ctx context.Context, sys *mem.System, every time.Duration, blockSize, initialPerNode int64, hp *hotplugStats) {
	r := rand.New(rand.NewPCG(7, 7))
	for n := 0; n < sys.NumNodes(); n++ {
		if ids, err := sys.AddMemory(n, blockSize); err == nil {
			hp.added.Add(int64(len(ids)))
		}
	}
	initialBlocks := int(initialPerNode) * sys.NumNodes()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		blocks := sys.Blocks()
		b := blocks[r.IntN(len(blocks))]
		switch {
		case b.State == mem.BlockOnline:
			err := sys.Offline(ctx, b.Index)
			switch {
			case err == nil:
				hp.offlined.Add(1)
			case errors.Is(err, syscall.EBUSY):
				hp.busy.Add(1)
			}
		case b.State == mem.BlockOffline && b.Index >= initialBlocks && r.IntN(3) == 0:
			if sys.RemoveMemory(b.Index) == nil {
				hp.removed.Add(1)
				if ids, err := sys.AddMemory(b.Node, blockSize); err == nil {
					hp.added.Add(int64(len(ids)))
				}
			}
		case b.State == mem.BlockOffline:
			if sys.Online(ctx, b.Index, mem.OnlineDefault) == nil {
				hp.onlined.Add(1)
			}
		}
	}
}

func printBlocks(w io.Writer, sys *mem.System) {
	fmt.Fprintf(w, "%-8s %-5s %-14s %-8s %8s %8s\n", "BLOCK", "NODE", "STATE", "ZONE", "FREE", "USED")
	for _, b := range sys.Blocks() {
		zone := "-"
		if b.State == mem.BlockOnline {
			zone = b.Zone.String()
		}
		fmt.Fprintf(w, "memory%-2d %-5d %-14s %-8s %8d %8d\n", b.Index, b.Node, b.State, zone, b.FreePages, b.UsedPages)
	}
}
