// Groups: the tree, limits, the hierarchical usage counter and events.

package memcg

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
)

// Group is a memory cgroup: a node of the Controller's tree with a usage
// counter, limits, events and slab statistics, each hierarchical (a
// group's numbers include its descendants', as cgroup v2's do).
type Group struct {
	ctrl   *Controller
	name   string
	parent *Group
	depth  int
	// objcg is the group's own ObjCgroup, fixed at creation.
	objcg *ObjCgroup
	// Under the Controller's mu: children by name, and the ObjCgroups
	// that point here (the own one and those reparented from removed
	// descendants).
	children  map[string]*Group
	objcgList []*ObjCgroup
	online    atomic.Bool
	// tid is TargetID's answer: objcg's id while online, noTarget once
	// removed (see TargetID).
	tid atomic.Uint32

	usage, max, high, peak atomic.Int64
	events                 [numEvents]atomic.Int64
	// stats holds charged bytes per node and Stat.
	stats [MaxNodes][numStats]atomic.Int64
	// kids is a snapshot of children for reclaim, which must not take
	// cgroup_mutex (replaced under it).
	kids atomic.Pointer[[]*Group]
}

// Event is a memory.events counter.
type Event int

// The memory.events counters, in the file's order.
const (
	EventLow  Event = iota // never counted: hotslab has no memory.low
	EventHigh              // a charge left the group above memory.high
	EventMax               // a charge hit memory.max (and reclaimed)
	EventOOM               // a charge failed at memory.max after reclaim
	EventOOMKill
	EventOOMGroupKill
	numEvents
)

var eventNames = [numEvents]string{"low", "high", "max", "oom", "oom_kill", "oom_group_kill"}

func (e Event) String() string {
	if e < 0 || e >= numEvents {
		return fmt.Sprintf("Event(%d)", int(e))
	}
	return eventNames[e]
}

// Name returns the group's name ("" for the root).
func (g *Group) Name() string { return g.name }

// Path returns the group's path from the root ("/" for the root,
// "/a/b" below it).
func (g *Group) Path() string {
	if g.parent == nil {
		return "/"
	}
	var parts []string
	for x := g; x.parent != nil; x = x.parent {
		parts = append(parts, x.name)
	}
	slices.Reverse(parts)
	return "/" + strings.Join(parts, "/")
}

// Parent returns the group's parent (nil for the root).
func (g *Group) Parent() *Group { return g.parent }

// Controller returns the group's controller.
func (g *Group) Controller() *Controller { return g.ctrl }

// Online reports whether the group is in the tree (not removed).
func (g *Group) Online() bool { return g.online.Load() }

// ObjCgroup returns the group's own ObjCgroup. After the group's removal
// it is moved to the parent and, once no object records it, freed at a
// Drain and its id reused: do not keep it across a removal.
func (g *Group) ObjCgroup() *ObjCgroup { return g.objcg }

// Children returns the group's children, sorted by name.
func (g *Group) Children() []*Group {
	c := g.ctrl
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Group, 0, len(g.children))
	for _, ch := range g.children {
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b *Group) int { return strings.Compare(a.name, b.name) })
	return out
}

// validName reports whether name can name a group: a cgroup directory
// name (no '/', not "." or "..", not empty, at most 255 bytes, no NUL).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 && !strings.ContainsAny(name, "/\x00\n")
}

// Create makes a child group (the kernel's mkdir in the cgroup tree). It
// fails with ErrExist if the name is taken, ErrInvalid for a bad name and
// ErrRemoved if g was removed. A removed group's name may be reused at
// once.
func (g *Group) Create(name string) (*Group, error) {
	if !validName(name) {
		return nil, fmt.Errorf("memcg: create %q in %s: %w", name, g.Path(), ErrInvalid)
	}
	c := g.ctrl
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.online.Load() {
		return nil, fmt.Errorf("memcg: create %q in %s: %w", name, g.Path(), ErrRemoved)
	}
	if g.children[name] != nil {
		return nil, fmt.Errorf("memcg: create %q in %s: %w", name, g.Path(), ErrExist)
	}
	runHook(hookCreateLocked)
	ch := c.newGroup(name, g)
	ch.objcg = c.newObjCgroupLocked(ch)
	ch.tid.Store(ch.objcg.id)
	g.children[name] = ch
	g.publishKids()
	if c.hooks != nil {
		c.hooks.GroupAdded(ch)
	}
	return ch, nil
}

// Remove takes the group out of the tree (the kernel's rmdir: offline,
// then freed once nothing refers to it). It fails with ErrBusy if the
// group has children and ErrInvalid for the root. Its objects stay
// charged: its ObjCgroups are moved to the parent (no object is walked),
// so their later frees uncharge the parent and its ancestors. Removing a
// removed group fails with ErrRemoved.
func (g *Group) Remove() error {
	c := g.ctrl
	if g.parent == nil {
		return fmt.Errorf("memcg: remove the root: %w", ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.online.Load() {
		return fmt.Errorf("memcg: remove %s: %w", g.Path(), ErrRemoved)
	}
	if len(g.children) > 0 {
		return fmt.Errorf("memcg: remove %s: %w", g.Path(), ErrBusy)
	}
	// Offline first: from now on a charge through g picks the parent's
	// ObjCgroup (Group.target, read in the pinned section).
	g.online.Store(false)
	p := g.parent
	g.tid.Store(noTarget)
	delete(p.children, g.name)
	p.publishKids()
	for _, o := range g.objcgList {
		o.group.Store(p)
		o.detached = true
		p.objcgList = append(p.objcgList, o)
	}
	g.objcgList = nil
	if c.hooks != nil {
		c.hooks.GroupRemoving(g)
	}
	runHook(hookRemoveOffline)
	// The drain's grace period waits out every pinned section that took
	// one of g's ObjCgroups before the offline; its flush makes their
	// reference counts exact, so the unused ones are freed now.
	c.drainLocked()
	return nil
}

// publishKids replaces the reclaim's snapshot of g's children. Called
// with mu held.
func (g *Group) publishKids() {
	kids := make([]*Group, 0, len(g.children))
	for _, ch := range g.children {
		kids = append(kids, ch)
	}
	g.kids.Store(&kids)
}

// dropObjCgroup removes o from g's list. Called with mu held.
func (g *Group) dropObjCgroup(o *ObjCgroup) {
	if i := slices.Index(g.objcgList, o); i >= 0 {
		g.objcgList = slices.Delete(g.objcgList, i, i+1)
	}
}

// target returns the ObjCgroup a charge through g uses: g's own while g
// is online, else its nearest online ancestor's.
func (g *Group) target() *ObjCgroup {
	for !g.online.Load() {
		g = g.parent
	}
	return g.objcg
}

// SetMax sets memory.max in bytes (math.MaxInt64: "max", no limit). A
// limit below the current usage reclaims (stocks, then shrinkers) and
// stays set even if usage stays above it, as the kernel's does after it
// gives up. The root cannot be limited (ErrInvalid).
func (g *Group) SetMax(n int64) error {
	if n < 0 || g.parent == nil {
		return fmt.Errorf("memcg: %s: memory.max %d: %w", g.Path(), n, ErrInvalid)
	}
	if !g.online.Load() {
		return fmt.Errorf("memcg: %s: memory.max: %w", g.Path(), ErrRemoved)
	}
	g.max.Store(n)
	if g.usage.Load() > n {
		g.ctrl.reclaim(g, func() bool { return g.usage.Load() <= g.max.Load() })
	}
	return nil
}

// SetHigh sets memory.high in bytes (math.MaxInt64: "max"). Above it a
// charge reclaims but never fails.
func (g *Group) SetHigh(n int64) error {
	if n < 0 || g.parent == nil {
		return fmt.Errorf("memcg: %s: memory.high %d: %w", g.Path(), n, ErrInvalid)
	}
	if !g.online.Load() {
		return fmt.Errorf("memcg: %s: memory.high: %w", g.Path(), ErrRemoved)
	}
	g.high.Store(n)
	return nil
}

// Max returns memory.max (math.MaxInt64: none).
func (g *Group) Max() int64 { return g.max.Load() }

// High returns memory.high (math.MaxInt64: none).
func (g *Group) High() int64 { return g.high.Load() }

// Current returns memory.current: the bytes charged to the group and its
// descendants, including what the P stocks hold pre-charged (Drain
// returns those).
func (g *Group) Current() int64 { return g.usage.Load() }

// Peak returns memory.peak: the highest Current since creation or the
// last ResetPeak.
func (g *Group) Peak() int64 { return g.peak.Load() }

// ResetPeak sets the peak to the current usage (a write to memory.peak).
func (g *Group) ResetPeak() { g.peak.Store(g.usage.Load()) }

// EventCount returns a memory.events counter (hierarchical).
func (g *Group) EventCount(e Event) int64 {
	if e < 0 || e >= numEvents {
		return 0
	}
	return g.events[e].Load()
}

// event counts e in g and its ancestors.
func (g *Group) event(e Event) {
	for x := g; x != nil; x = x.parent {
		x.events[e].Add(1)
	}
}

// tryCharge adds n to the usage of g and every ancestor unless one would
// exceed its max: then it undoes what it added and returns that group.
// Kernel: page_counter_try_charge().
func (g *Group) tryCharge(n int64) (over *Group) {
	for x := g; x != nil; x = x.parent {
		u := x.usage.Add(n)
		if u > x.max.Load() {
			x.usage.Add(-n)
			for y := g; y != x; y = y.parent {
				y.usage.Add(-n)
			}
			return x
		}
		if u > x.peak.Load() {
			x.raisePeak(u)
		}
	}
	return nil
}

func (g *Group) raisePeak(u int64) {
	for {
		p := g.peak.Load()
		if u <= p || g.peak.CompareAndSwap(p, u) {
			return
		}
	}
}

// uncharge subtracts n from g and every ancestor.
func (g *Group) uncharge(n int64) {
	for x := g; x != nil; x = x.parent {
		x.usage.Add(-n)
	}
}

// overHigh returns the first group from g up whose usage is above its
// high, or nil.
func (g *Group) overHigh() *Group {
	for x := g; x != nil; x = x.parent {
		if h := x.high.Load(); h != math.MaxInt64 && x.usage.Load() > h {
			return x
		}
	}
	return nil
}

// Stat is what a charge is, for memory.stat: slab memory, reclaimable or
// not, or other kernel memory (whole pages, such as large kmallocs).
type Stat int

const (
	StatSlabUnreclaimable Stat = iota // memory.stat slab_unreclaimable
	StatSlabReclaimable               // slab_reclaimable (slab.ReclaimAccount caches)
	StatKernel                        // in "kernel" only: large kmallocs' pages
	numStats
)

// addStat adds n bytes of node's statistic st to g and every ancestor.
func (g *Group) addStat(node int, st Stat, n int64) {
	if node < 0 || node >= MaxNodes || st < 0 || st >= numStats || n == 0 {
		return
	}
	for x := g; x != nil; x = x.parent {
		x.stats[node][st].Add(n)
	}
}

// Kernel returns the group's kernel memory on node (-1: all nodes): slab
// memory and other charged pages, as memory.stat's "kernel".
func (g *Group) Kernel(node int) int64 {
	u, r := g.Slab(node)
	return u + r + g.statSum(node, StatKernel)
}

func (g *Group) statSum(node int, st Stat) int64 {
	if node >= 0 {
		if node >= MaxNodes {
			return 0
		}
		return g.stats[node][st].Load()
	}
	var sum int64
	for n := range g.stats {
		sum += g.stats[n][st].Load()
	}
	return sum
}

// Slab returns the group's slab bytes on node (-1: all nodes), not
// reclaimable and reclaimable, as memory.stat and memory.numa_stat show
// them (exact after Controller.Drain).
func (g *Group) Slab(node int) (unreclaimable, reclaimable int64) {
	return g.statSum(node, StatSlabUnreclaimable), g.statSum(node, StatSlabReclaimable)
}

// TargetID returns the id of g's own ObjCgroup while g is online: an
// object recording it is charged where a charge through g goes, so
// package slab may reuse such an object's charge (one load, one
// compare). Once g is removed it returns an id no ObjCgroup has (its
// parent's could be freed and its id reused while a handle of g is
// still in use): charges through g then take the slow path, which
// charges its nearest online ancestor.
func (g *Group) TargetID() uint32 { return g.tid.Load() }

// noTarget is TargetID of a removed group: no ObjCgroup has this id.
const noTarget = ^uint32(0)

// TargetIDRef returns the word TargetID reads, for a reader that must read
// it in a pinned section (package slab's assembly): an ObjCgroup id read
// there cannot be freed and reused before the section ends, since the
// drain that frees one begins with a grace period.
func (g *Group) TargetIDRef() *atomic.Uint32 { return &g.tid }
