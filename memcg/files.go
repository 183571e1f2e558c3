// The kernel's cgroup v2 memory files, rendered and parsed.

package memcg

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hotslab/hotslab/internal/kstrto"
)

// Files lists the memory files a non-root group has, in the order a
// directory listing shows them, with their modes.
var Files = []struct {
	Name string
	Mode uint32
}{
	{"memory.current", 0o444},
	{"memory.events", 0o444},
	{"memory.high", 0o644},
	{"memory.max", 0o644},
	{"memory.numa_stat", 0o444},
	{"memory.peak", 0o644},
	{"memory.stat", 0o444},
}

// formatLimit renders a limit as the kernel does: "max" or bytes.
func formatLimit(n int64) string {
	if n == math.MaxInt64 {
		return "max\n"
	}
	return strconv.FormatInt(n, 10) + "\n"
}

// ParseLimit parses what memory.max and memory.high take: "max", or a
// byte count with an optional K, M, G or T suffix (powers of 1024),
// surrounding white space and a trailing newline allowed (the kernel's
// page_counter_memparse). The result is rounded down to whole 4 KiB
// pages, as the kernel's counters are in pages. Anything else is
// ErrInvalid.
func ParseLimit(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "max" {
		return math.MaxInt64, nil
	}
	t, mult := kstrto.SplitSuffix(t)
	n, err := kstrto.Uint(t, 63)
	if err != nil {
		return 0, fmt.Errorf("memcg: limit %q: %w", s, ErrInvalid)
	}
	if n > math.MaxInt64/uint64(mult) {
		return math.MaxInt64, nil
	}
	return int64(n) * mult &^ (1<<12 - 1), nil
}

// FileContents returns what reading the group's memory file name gives,
// as a snapshot (counters exact up to the P stocks; see Drain).
// Unknown names are ErrNotExist; the root has only memory.stat and
// memory.numa_stat, as the kernel's root cgroup (ErrNotExist for the
// others).
func (g *Group) FileContents(name string) (string, error) {
	if g.parent == nil && name != "memory.stat" && name != "memory.numa_stat" {
		return "", fmt.Errorf("memcg: %s: %s: %w", g.Path(), name, ErrNotExist)
	}
	switch name {
	case "memory.current":
		return strconv.FormatInt(g.Current(), 10) + "\n", nil
	case "memory.peak":
		return strconv.FormatInt(g.Peak(), 10) + "\n", nil
	case "memory.max":
		return formatLimit(g.Max()), nil
	case "memory.high":
		return formatLimit(g.High()), nil
	case "memory.events":
		var b strings.Builder
		for e := Event(0); e < numEvents; e++ {
			fmt.Fprintf(&b, "%s %d\n", e, g.EventCount(e))
		}
		return b.String(), nil
	case "memory.stat":
		unrecl, recl := g.Slab(-1)
		return fmt.Sprintf("anon 0\nfile 0\nkernel %d\nslab_reclaimable %d\nslab_unreclaimable %d\nslab %d\n",
			g.Kernel(-1), recl, unrecl, unrecl+recl), nil
	case "memory.numa_stat":
		var b strings.Builder
		nodes := g.ctrl.nodes()
		for _, item := range []struct {
			name string
			f    func(node int) int64
		}{
			{"anon", func(int) int64 { return 0 }},
			{"file", func(int) int64 { return 0 }},
			{"kernel", g.Kernel},
			{"slab_reclaimable", func(n int) int64 { _, r := g.Slab(n); return r }},
			{"slab_unreclaimable", func(n int) int64 { u, _ := g.Slab(n); return u }},
		} {
			b.WriteString(item.name)
			for _, n := range nodes {
				fmt.Fprintf(&b, " N%d=%d", n, item.f(n))
			}
			b.WriteByte('\n')
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("memcg: %s: %s: %w", g.Path(), name, ErrNotExist)
}

// WriteFile performs a write to the group's memory file name: memory.max
// and memory.high take ParseLimit's forms, memory.peak takes anything and
// resets the peak. A read-only file is ErrPermission (EACCES), another
// name ErrNotExist; a bad value is ErrInvalid and changes nothing.
func (g *Group) WriteFile(name, data string) error {
	if g.parent == nil {
		return fmt.Errorf("memcg: %s: write %s: %w", g.Path(), name, ErrNotExist)
	}
	switch name {
	case "memory.max", "memory.high":
		n, err := ParseLimit(data)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", g.Path(), name, err)
		}
		if name == "memory.max" {
			return g.SetMax(n)
		}
		return g.SetHigh(n)
	case "memory.peak":
		g.ResetPeak()
		return nil
	case "memory.current", "memory.events", "memory.stat", "memory.numa_stat":
		return fmt.Errorf("memcg: %s: write %s: %w", g.Path(), name, ErrPermission)
	}
	return fmt.Errorf("memcg: %s: write %s: %w", g.Path(), name, ErrNotExist)
}

// SetNodes sets how the controller lists NUMA nodes for memory.numa_stat
// (the nodes with memory; slab sets it from its System). Without it,
// node 0 and every node with slab statistics are listed.
func (c *Controller) SetNodes(f func() []int) { c.nodesFn.Store(&f) }

func (c *Controller) nodes() []int {
	if f := c.nodesFn.Load(); f != nil {
		return (*f)()
	}
	out := []int{0}
	for n := 1; n < MaxNodes; n++ {
		if c.root.Kernel(n) != 0 {
			out = append(out, n)
		}
	}
	return out
}
