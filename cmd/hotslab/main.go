// Command hotslab runs a live hotslab system — a slab allocator over
// hot-pluggable, NUMA-organised, off-heap memory, with memcg tenants —
// serves it through the kernel's own files over FUSE, and drives a
// running one through them.
//
// Usage:
//
//	hotslab run [-config file.json] [-sysfs DIR] [-duration 10s] [-print-config] [-v]
//	hotslab mem -sysfs DIR                  the memory blocks (lsmem-like)
//	hotslab slabinfo -sysfs DIR             /proc/slabinfo
//	hotslab top -sysfs DIR [-n 5] [-d 1s]   a slabtop-like view, refreshed
//	hotslab online|offline -sysfs DIR [-zone kernel|movable] BLOCK
//	hotslab cgroup -sysfs DIR [list | create NAME | remove NAME | set NAME FILE VALUE | show NAME]
//	hotslab torture [-duration 30s] [-seed N] [-workers N]
//
// run starts a live system from the embedded default configuration (or
// the given file): a workload allocating, checking and freeing objects in
// several caches on every P, accounted ones charged to memcg tenants with
// limits, while memory blocks are hot-added, onlined, offlined and
// removed. It mounts the views (a temporary directory unless -sysfs is
// given; -sysfs "" mounts none), prints how to look at them with lsmem and
// inside unshare -m, shows a live status line on a terminal (a report
// every interval otherwise), and at the end, or on SIGINT/SIGTERM,
// unmounts and prints its verification. It exits 0 on a clean run, 1 if
// the verification found a violation or the views could not be mounted on
// the -sysfs DIR asked for (an automatic temporary directory that cannot
// be mounted only says so), 2 on bad usage.
//
// torture runs a randomised concurrent mix of everything — hotplug through
// the API and the sysfs files, caches created, merged, shrunk, validated
// and destroyed, allocations of every kind on every node and P (objects
// pattern-checked), memcg groups created, limited and removed with a
// shrinker at work, failslab, fail_page_alloc and notifier error
// injection on — then checks the invariants (every object intact, every
// cache destroyed, every group's charge zero, all memory free, no lockdep
// report) and prints, last, "torture: PASS ops=N hotplug=N violations=0
// seed=S" (or FAIL with the first violation; exit status 1).
//
// The other commands read and write a running system's mount: DIR is the
// directory run printed. They exit 0 on success, 1 on failure, 2 on bad
// usage.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/hotslab/hotslab/internal/kstrto"
	"github.com/hotslab/hotslab/slab"
)

//go:embed default.json
var defaultConfig []byte

// Config is the run configuration.
type Config struct {
	Nodes           int            `json:"nodes"`
	BlockSize       string         `json:"block_size"`
	InitialPerNode  string         `json:"initial_per_node"`
	AutoOnline      string         `json:"auto_online"`
	Duration        string         `json:"duration"`
	ReportInterval  string         `json:"report_interval"`
	HotplugInterval string         `json:"hotplug_interval"`
	Workers         int            `json:"workers"`
	Caches          []CacheConfig  `json:"caches"`
	Tenants         []TenantConfig `json:"tenants"`
	// SlabDebug is a slab_debug spec (slab.ParseDebugSpec), e.g.
	// "FZP,dentry"; the environment's HOTSLAB_SLAB_DEBUG when empty.
	SlabDebug string `json:"slab_debug"`
}

// TenantConfig describes a memcg tenant: a group under the root with
// limits ("max" or a size; "" for none), charged by the workload's
// allocations from caches with the "account" flag.
type TenantConfig struct {
	Name string `json:"name"`
	Max  string `json:"max"`
	High string `json:"high"`
}

// CacheConfig describes one cache of the workload.
type CacheConfig struct {
	Name  string   `json:"name"`
	Size  int      `json:"size"`
	Flags []string `json:"flags"`
}

var flagNames = map[string]slab.Flags{
	"hwcache_align":   slab.HWCacheAlign,
	"account":         slab.Account,
	"reclaim_account": slab.ReclaimAccount,
	"no_merge":        slab.NoMerge,
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "hotslab:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	os.Exit(1)
}

// usageError is a bad command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage:
  hotslab run [-config file.json] [-sysfs DIR] [-duration 10s] [-print-config] [-v]
  hotslab mem -sysfs DIR
  hotslab slabinfo -sysfs DIR
  hotslab top -sysfs DIR [-n 5] [-d 1s]
  hotslab online|offline -sysfs DIR [-zone kernel|movable] BLOCK
  hotslab cgroup -sysfs DIR [list | create NAME | remove NAME | show NAME | set NAME FILE VALUE]
  hotslab torture [-duration 30s] [-seed N] [-workers N]`

func run(args []string, stdout, stderr io.Writer) error {
	return runCtx(context.Background(), args, stdout, stderr)
}

func runCtx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	switch args[0] {
	case "run":
		return cmdRunCtx(ctx, args[1:], stdout, stderr)
	case "torture":
		return cmdTorture(args[1:], stdout, stderr)
	case "mem", "slabinfo", "top", "online", "offline", "cgroup":
		return cmdSysfs(args[0], args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usage)}
}

// parseSize parses a decimal byte count with an optional K, M, G or T
// suffix (powers of 1024): "128M", "1G", "4096", "2k".
func parseSize(s string) (int64, error) {
	t, mult := kstrto.SplitSuffix(strings.TrimSpace(s))
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
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
