// Command hotslab runs a live hotslab system: a slab allocator over
// hot-pluggable, NUMA-organised, off-heap memory.
//
// Usage:
//
//	hotslab run [-config file.json] [-duration 10s] [-print-config]
//
// run starts a live system from the embedded default configuration (or the
// given file): a workload allocating and freeing objects in several caches
// on every P while memory blocks are hot-added, onlined and offlined, and
// prints /proc/slabinfo-format cache statistics and the memory blocks as it
// goes.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

//go:embed default.json
var defaultConfig []byte

// Config is the run configuration.
type Config struct {
	Nodes           int           `json:"nodes"`
	BlockSize       string        `json:"block_size"`
	InitialPerNode  string        `json:"initial_per_node"`
	AutoOnline      string        `json:"auto_online"`
	Duration        string        `json:"duration"`
	ReportInterval  string        `json:"report_interval"`
	HotplugInterval string        `json:"hotplug_interval"`
	Workers         int           `json:"workers"`
	Caches          []CacheConfig `json:"caches"`
}

// CacheConfig describes one cache of the workload.
type CacheConfig struct {
	Name  string   `json:"name"`
	Size  int      `json:"size"`
	Flags []string `json:"flags"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hotslab:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprintln(stdout, "usage: hotslab run [-config file.json] [-duration 10s] [-print-config]")
		return nil
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (try: hotslab run)", args[0])
}

// parseSize parses "128M", "1G", "4096", "2k".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

func loadConfig(path string) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(defaultConfig, &cfg); err != nil {
		return cfg, fmt.Errorf("embedded config: %w", err)
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, err
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	return cfg, nil
}

var flagNames = map[string]slab.Flags{
	"hwcache_align":   slab.HWCacheAlign,
	"account":         slab.Account,
	"reclaim_account": slab.ReclaimAccount,
	"no_merge":        slab.NoMerge,
}

type workCache struct {
	c    *slab.Cache
	size int
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "JSON configuration file (default: the embedded one)")
	durFlag := fs.String("duration", "", "how long to run (overrides the config; 0 = until interrupted)")
	printCfg := fs.Bool("print-config", false, "print the effective configuration and exit")
	verbose := fs.Bool("v", false, "log hotplug events")
	if err := fs.Parse(args); err != nil {
		return err
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

	sys, err := mem.New(mem.Config{Nodes: cfg.Nodes, BlockSize: blockSize, InitialPerNode: initial, AutoOnline: policy, Logger: log})
	if err != nil {
		return err
	}
	defer sys.Close()
	a, err := slab.New(sys, &slab.Options{Logger: log})
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
		caches = append(caches, workCache{c, cc.Size})
	}
	if len(caches) == 0 {
		return errors.New("no caches configured")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	fmt.Fprintf(stdout, "hotslab: %d nodes, %d MiB blocks, %d MiB per node, auto-online %s, %d caches, %d workers\n",
		sys.NumNodes(), blockSize>>20, initial>>20, policy, len(caches), cfg.Workers)

	var ops, enomem atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < max(cfg.Workers, 1); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			worker(ctx, w, caches, &ops, &enomem)
		}(w)
	}
	var hp hotplugStats
	wg.Add(1)
	go func() {
		defer wg.Done()
		hotplugDriver(ctx, sys, hpEvery, blockSize, &hp)
	}()
	tick := time.NewTicker(report)
	defer tick.Stop()
	start := time.Now()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		fmt.Fprintf(stdout, "\n--- %.1fs: %d alloc/free ops, %d ENOMEM; hotplug: %s\n",
			time.Since(start).Seconds(), ops.Load(), enomem.Load(), hp.String())
		printBlocks(stdout, sys)
		if err := a.WriteSlabinfo(stdout); err != nil {
			return err
		}
	}
	wg.Wait()
	for _, wc := range caches {
		wc.c.Shrink()
		if err := wc.c.Destroy(); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "\nhotslab: all objects freed, caches destroyed")
	return nil
}

// worker allocates objects into a working set and frees them at random.
func worker(ctx context.Context, w int, caches []workCache, ops, enomem *atomic.Int64) {
	r := rand.New(rand.NewPCG(uint64(w), 42))
	type obj struct {
		c *slab.Cache
		p unsafe.Pointer
	}
	var set []obj
	for n := 0; ctx.Err() == nil; n++ {
		wc := caches[r.IntN(len(caches))]
		if p, err := wc.c.Alloc(); err == nil {
			*(*byte)(p) = byte(n)
			set = append(set, obj{wc.c, p})
		} else {
			enomem.Add(1)
			time.Sleep(time.Millisecond)
		}
		if len(set) > 20000 || (len(set) > 0 && r.IntN(2) == 0) {
			i := r.IntN(len(set))
			set[i].c.Free(set[i].p)
			set[i] = set[len(set)-1]
			set = set[:len(set)-1]
		}
		if n%1024 == 0 {
			ops.Add(1024)
		}
	}
	for _, o := range set {
		o.c.Free(o.p)
	}
}

type hotplugStats struct {
	added, onlined, offlined, busy atomic.Int64
}

func (h *hotplugStats) String() string {
	return fmt.Sprintf("%d added, %d onlined, %d offlined, %d busy", h.added.Load(), h.onlined.Load(), h.offlined.Load(), h.busy.Load())
}

// hotplugDriver adds a block to each node once, then keeps offlining and
// onlining random blocks.
func hotplugDriver(ctx context.Context, sys *mem.System, every time.Duration, blockSize int64, hp *hotplugStats) {
	r := rand.New(rand.NewPCG(7, 7))
	for n := 0; n < sys.NumNodes(); n++ {
		if ids, err := sys.AddMemory(n, blockSize); err == nil {
			hp.added.Add(int64(len(ids)))
		}
	}
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
		switch b.State {
		case mem.BlockOnline:
			err := sys.Offline(ctx, b.Index)
			switch {
			case err == nil:
				hp.offlined.Add(1)
			case errors.Is(err, syscall.EBUSY):
				hp.busy.Add(1)
			}
		case mem.BlockOffline:
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
