// The slab views: proc/slabinfo and sys/kernel/slab, for a slab.Allocator.

package sysfs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/hotslab/hotslab/slab"
)

var activeSlabinfo = ActiveClass("proc/slabinfo")

// slabView keeps an Allocator's caches in a tree.
type slabView struct {
	a     *slab.Allocator
	dir   *Node // sys/kernel/slab
	mu    sync.Mutex
	nodes map[string]*Node // cache directories and name links, by name
}

// AddSlab serves a's caches as /proc/slabinfo (version 2.1) and
// /sys/kernel/slab/<cache>/ (merged caches as ":..." directories with a
// symlink per name), kept up to date as caches and aliases come and go.
// It returns a function that stops following a.
func AddSlab(t *Tree, a *slab.Allocator) (stop func(), err error) {
	proc, err := mkdirAll(t.Root(), "proc")
	if err != nil {
		return nil, err
	}
	if _, err := proc.AddFile("slabinfo", 0o400, Attr{Show: func() (string, error) {
		var b bytes.Buffer
		err := a.WriteSlabinfo(&b)
		return b.String(), err
	}}, activeSlabinfo); err != nil {
		return nil, err
	}
	dir, err := mkdirAll(t.Root(), "sys/kernel/slab")
	if err != nil {
		return nil, err
	}
	v := &slabView{a: a, dir: dir, nodes: map[string]*Node{}}
	return a.SetSysfs(v), nil
}

// perNode renders a total and its per-node counts as the kernel does:
// "80 N0=50 N1=30" (nodes with a zero count left out).
func perNode(st slab.CacheStats, f func(slab.NodeStats) int64) string {
	var total int64
	var b strings.Builder
	for _, n := range st.Nodes {
		v := f(n)
		total += v
		if v != 0 {
			fmt.Fprintf(&b, " N%d=%d", n.Node, v)
		}
	}
	return fmt.Sprintf("%d%s\n", total, b.String())
}

func boolAttr(b bool) string {
	if b {
		return "1\n"
	}
	return "0\n"
}

// CacheAdded creates the cache's directory and attributes (slab calls it
// with slab_mutex held).
func (v *slabView) CacheAdded(ci slab.CacheInfo) {
	d, err := v.dir.Mkdir(ci.UniqueID, 0o755)
	if err != nil {
		return
	}
	v.mu.Lock()
	v.nodes[ci.UniqueID] = d
	v.mu.Unlock()
	stats := ci.Stats
	ro := func(name string, show func() string) {
		_, _ = d.AddFile(name, 0o400, Attr{Show: func() (string, error) { return show(), nil }}, ActiveClass("slab/"+name))
	}
	num := func(name string, f func(slab.CacheStats) int64) {
		ro(name, func() string { return fmt.Sprintf("%d\n", f(stats())) })
	}
	num("slab_size", func(s slab.CacheStats) int64 { return int64(s.Size) })
	num("object_size", func(s slab.CacheStats) int64 { return int64(s.ObjectSize) })
	num("objs_per_slab", func(s slab.CacheStats) int64 { return int64(s.ObjsPerSlab) })
	num("order", func(s slab.CacheStats) int64 { return int64(s.Order) })
	num("align", func(s slab.CacheStats) int64 { return int64(s.Align) })
	num("sheaf_capacity", func(s slab.CacheStats) int64 { return int64(s.SheafCap) })
	num("min_partial", func(slab.CacheStats) int64 { return int64(ci.MinPartial()) })
	num("cpu_partial", func(slab.CacheStats) int64 { return 0 })
	num("aliases", func(slab.CacheStats) int64 { return int64(ci.AliasCount()) })
	ro("total_objects", func() string { return perNode(stats(), func(n slab.NodeStats) int64 { return n.Objects }) })
	ro("cpu_slabs", func() string { return "0\n" })
	ro("slabs_cpu_partial", func() string { return "0(0)\n" })
	ro("slabs", func() string { return perNode(stats(), func(n slab.NodeStats) int64 { return n.Slabs }) })
	ro("partial", func() string { return perNode(stats(), func(n slab.NodeStats) int64 { return n.Partial }) })
	ro("objects", func() string {
		return perNode(stats(), func(n slab.NodeStats) int64 { return n.Objects - n.Free })
	})
	ro("objects_partial", func() string { return "0\n" })
	ro("ctor", func() string {
		if ci.HasCtor() {
			return ci.Name + "_ctor\n"
		}
		return ""
	})
	fl := ci.Flags()
	ro("hwcache_align", func() string { return boolAttr(fl&slab.HWCacheAlign != 0) })
	ro("reclaim_account", func() string { return boolAttr(fl&slab.ReclaimAccount != 0) })
	ro("destroy_by_rcu", func() string { return "0\n" })
	ro("sanity_checks", func() string { return boolAttr(fl&slab.ConsistencyChecks != 0) })
	ro("red_zone", func() string { return boolAttr(fl&slab.RedZone != 0) })
	ro("poison", func() string { return boolAttr(fl&slab.Poison != 0) })
	ro("store_user", func() string { return boolAttr(fl&slab.StoreUser != 0) })
	ro("trace", func() string { return boolAttr(fl&slab.Trace != 0) })
	for _, name := range []string{"alloc_calls", "free_calls"} {
		free := name == "free_calls"
		_, _ = d.AddFile(name, 0o400, Attr{Show: func() (string, error) {
			s, tracked := ci.Calls(free)
			if !tracked {
				return "", fmt.Errorf("%s: the cache does not track calls (StoreUser): %w", name, syscall.ENOSYS)
			}
			if s == "" {
				return "No data\n", nil
			}
			return s, nil
		}}, ActiveClass("slab/"+name))
	}
	for st := slab.Stat(0); st < slab.NumStats; st++ {
		st := st
		num(st.String(), func(s slab.CacheStats) int64 { return int64(s.Counters[st]) })
	}
	// shrink: writing 1 shrinks the cache. It runs under the file's
	// active reference and must not take slab_mutex, which cache
	// creation and destruction hold while they add and remove these
	// directories (the 2021 lesson); ci.Shrink takes slab_flush_lock.
	_, _ = d.AddFile("shrink", 0o600, Attr{Show: emptyShow, Store: func(_ context.Context, data string) error {
		if !strings.HasPrefix(data, "1") { // shrink_store: buf[0] == '1', else EINVAL
			return fmt.Errorf("shrink %q: %w", data, syscall.EINVAL)
		}
		ci.Shrink()
		return nil
	}}, activeShrink)
	// failslab: the cache's mark for failslab's cache-filter (0644, 0/1).
	_, _ = d.AddFile("failslab", 0o644, Attr{
		Show: func() (string, error) { return boolAttr(ci.Failslab()), nil },
		Store: func(_ context.Context, data string) error {
			on, err := ParseBool(data)
			if err != nil {
				return err
			}
			ci.SetFailslab(on)
			return nil
		}}, ActiveClass("slab/failslab"))
	// validate: writing 1 validates the cache's slabs. The kernel logs
	// what it finds and succeeds; here the report is logged too and the
	// write fails with EIO, so that the writer learns of it.
	_, _ = d.AddFile("validate", 0o600, Attr{Show: emptyShow, Store: func(_ context.Context, data string) error {
		if !strings.HasPrefix(data, "1") { // validate_store: buf[0] == '1', else EINVAL
			return fmt.Errorf("validate %q: %w", data, syscall.EINVAL)
		}
		if err := ci.Validate(); err != nil {
			return fmt.Errorf("%w: %w", err, syscall.EIO)
		}
		return nil
	}}, activeValidate)
}

// emptyShow is what the kernel's shrink and validate files read: nothing.
func emptyShow() (string, error) { return "", nil }

var (
	activeShrink   = ActiveClass("slab/shrink")
	activeValidate = ActiveClass("slab/validate")
)

// CacheRemoving removes the cache's directory, waiting for its active
// references (slab calls it with slab_mutex held).
func (v *slabView) CacheRemoving(uniqueID string) {
	v.remove(uniqueID)
}

// NameAdded links a name to its cache's directory.
func (v *slabView) NameAdded(name, uniqueID string) {
	if name == uniqueID {
		return
	}
	l, err := v.dir.AddLink(name, uniqueID)
	if err != nil {
		return
	}
	v.mu.Lock()
	v.nodes[name] = l
	v.mu.Unlock()
}

// NameRemoved removes a name's link.
func (v *slabView) NameRemoved(name string) { v.remove(name) }

func (v *slabView) remove(name string) {
	v.mu.Lock()
	n := v.nodes[name]
	delete(v.nodes, name)
	v.mu.Unlock()
	if n != nil {
		_ = n.Remove()
	}
}
