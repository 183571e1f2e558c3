// The Controller: the group tree, its lock, and the table of ObjCgroups.

package memcg

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/lockdep"
)

// Lock classes, in lock order (outermost first); see the package doc.
var (
	shrinkerClass    = lockdep.NewClass("shrinker_rwsem")
	cgroupMutexClass = lockdep.NewClass("cgroup_mutex")
	drainMutexClass  = lockdep.NewClass("memcg_drain_mutex")
)

// MaxNodes is the number of NUMA nodes whose statistics a group keeps
// (mem.MaxNodes).
const MaxNodes = 64

// ChargeBatch is how many bytes a P's stock charges to the counters at a
// time (the kernel's MEMCG_CHARGE_BATCH of 64 pages, in bytes).
const ChargeBatch = 64 << 12

// Controller is a tree of groups and what charges them: one per slab
// Allocator (slab.Allocator.Memcg). Its methods are safe for concurrent
// use.
type Controller struct {
	// mu (cgroup_mutex) protects the tree: every group's children and
	// online flag, and objcgList; the ObjCgroup id free list.
	mu   lockdep.Mutex
	root *Group
	// objcgs maps an ObjCgroup id to it (index 0: none); replaced
	// (copy-on-grow) under mu, read lock-free by uncharges.
	objcgs  atomic.Pointer[[]*ObjCgroup]
	freeIDs []uint32

	// stocks are the per-P stocks; draining (non-zero while a Drain
	// runs) sends every charge and uncharge past them.
	stocks   []stockSlot
	draining atomic.Int32
	drainMu  lockdep.Mutex

	// shrinkMu (shrinker_rwsem) is recursive for readers: a shrinker
	// that allocates accounted memory may reclaim again.
	shrinkMu  lockdep.RecursiveRWMutex
	shrinkers []*Shrinker

	nodesFn atomic.Pointer[func() []int]
	// flusher gives back the charges the slab layer keeps for reuse
	// (SetFlusher).
	flusher atomic.Pointer[func()]
	// hooks (under mu) is told of groups as they come and go.
	hooks GroupHooks
}

// GroupHooks is told of groups with cgroup_mutex held: GroupAdded after a
// group is created, GroupRemoving when it is removed (after it went
// offline; it may wait, e.g. for a cgroup directory's active references,
// but must not take cgroup_mutex). Kernel: the cgroup core's kernfs
// directory creation and removal.
type GroupHooks interface {
	GroupAdded(g *Group)
	GroupRemoving(g *Group)
}

// SetHooks registers h (nil: none) and tells it of every existing group,
// parents first; it returns a function that unregisters it.
func (c *Controller) SetHooks(h GroupHooks) (unset func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks = h
	if h != nil {
		var walk func(g *Group)
		walk = func(g *Group) {
			h.GroupAdded(g)
			for _, ch := range g.children {
				walk(ch)
			}
		}
		walk(c.root)
	}
	return func() {
		c.mu.Lock()
		if c.hooks == h {
			c.hooks = nil
		}
		c.mu.Unlock()
	}
}

// SetFlusher sets what Drain and reclaim call, with no memcg lock but
// cgroup_mutex and memcg_drain_mutex (Drain) or none (reclaim) held, to
// give back the charges a slab layer keeps for reuse: package slab
// leaves a freed accounted object charged in its P's sheaf until it is
// allocated again, and its flusher empties those sheaves into their
// slabs, uncharging every object.
func (c *Controller) SetFlusher(f func()) { c.flusher.Store(&f) }

func (c *Controller) flushSlab() {
	if f := c.flusher.Load(); f != nil {
		(*f)()
	}
}

// New returns a Controller with an empty root group.
func New() *Controller {
	c := &Controller{stocks: make([]stockSlot, percpu.MaxProcs())}
	c.mu.Init(cgroupMutexClass)
	c.drainMu.Init(drainMutexClass)
	c.shrinkMu.Init(shrinkerClass)
	ids := make([]*ObjCgroup, 1, 16)
	c.objcgs.Store(&ids)
	c.root = c.newGroup("", nil)
	c.mu.Lock()
	c.root.objcg = c.newObjCgroupLocked(c.root)
	c.root.tid.Store(c.root.objcg.id)
	c.mu.Unlock()
	return c
}

// Root returns the root group. The root has no limits and cannot be
// removed; charges to it are counted like any group's.
func (c *Controller) Root() *Group { return c.root }

func (c *Controller) newGroup(name string, parent *Group) *Group {
	g := &Group{ctrl: c, name: name, parent: parent, children: map[string]*Group{}}
	g.max.Store(math.MaxInt64)
	g.high.Store(math.MaxInt64)
	g.online.Store(true)
	if parent != nil {
		g.depth = parent.depth + 1
	}
	return g
}

// Lookup returns the group at path ("a/b/c", relative to the root; "" or
// "/" is the root).
func (c *Controller) Lookup(path string) (*Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.root
	for _, name := range strings.Split(strings.Trim(path, "/"), "/") {
		if name == "" {
			continue
		}
		child := g.children[name]
		if child == nil {
			return nil, fmt.Errorf("memcg: lookup %q: %w", path, ErrNotExist)
		}
		g = child
	}
	return g, nil
}

// ObjCgroup is the kernel's obj_cgroup: what an accounted object records
// (by id) and what its free uncharges. It points to the group that
// charged it until that group is removed, then to the nearest live
// ancestor. It is freed, and its id reused, once it is detached and no
// object refers to it (counted exactly at Drain).
type ObjCgroup struct {
	id    uint32
	group atomic.Pointer[Group]
	// refs counts the objects that record this ObjCgroup, less what the
	// P stocks hold pending.
	refs atomic.Int64
	// detached (under cgroup_mutex): its group was removed; freed at a
	// Drain that finds refs == 0.
	detached bool
}

// ID returns the id objects record for o (never 0).
func (o *ObjCgroup) ID() uint32 { return o.id }

// Group returns the group o charges now.
func (o *ObjCgroup) Group() *Group { return o.group.Load() }

// newObjCgroupLocked allocates an ObjCgroup for g. Called with mu held.
func (c *Controller) newObjCgroupLocked(g *Group) *ObjCgroup {
	o := &ObjCgroup{}
	o.group.Store(g)
	ids := *c.objcgs.Load()
	if n := len(c.freeIDs); n > 0 {
		o.id = c.freeIDs[n-1]
		c.freeIDs = c.freeIDs[:n-1]
		next := append([]*ObjCgroup(nil), ids...)
		next[o.id] = o
		c.objcgs.Store(&next)
	} else {
		o.id = uint32(len(ids))
		next := append(append([]*ObjCgroup(nil), ids...), o)
		c.objcgs.Store(&next)
	}
	g.objcgList = append(g.objcgList, o)
	return o
}

// ObjCgroupOf returns the ObjCgroup with id (nil for 0 or an id not in
// use).
func (c *Controller) ObjCgroupOf(id uint32) *ObjCgroup {
	ids := *c.objcgs.Load()
	if int(id) >= len(ids) {
		return nil
	}
	return ids[id]
}

// ObjCgroups returns how many ObjCgroups exist, live and detached (the
// root's included): a detached one is freed at the first Drain after the
// last object recording it is freed.
func (c *Controller) ObjCgroups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, o := range *c.objcgs.Load() {
		if o != nil {
			n++
		}
	}
	return n
}

// freeDetachedLocked frees every detached ObjCgroup with no object
// left. Called with mu and drainMu held, every stock drained (so refs are
// exact).
func (c *Controller) freeDetachedLocked() {
	ids := *c.objcgs.Load()
	var next []*ObjCgroup
	for id, o := range ids {
		if o == nil || !o.detached || o.refs.Load() != 0 {
			continue
		}
		if next == nil {
			next = append([]*ObjCgroup(nil), ids...)
		}
		next[id] = nil
		c.freeIDs = append(c.freeIDs, uint32(id))
		if g := o.group.Load(); g != nil {
			g.dropObjCgroup(o)
		}
	}
	if next != nil {
		c.objcgs.Store(&next)
	}
}
