// Shrinkers: callbacks that free a user's cached objects under pressure
// (the kernel's struct shrinker, count_objects/scan_objects).

package memcg

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// ShrinkStop is what a Scan returns when it cannot make progress now
// (the kernel's SHRINK_STOP).
const ShrinkStop = ^uint64(0)

// ShrinkControl says what a shrinker is asked about (the kernel's
// struct shrink_control).
type ShrinkControl struct {
	// Group is the group under pressure (or a descendant of it): a
	// memcg-aware shrinker counts and frees only that group's objects.
	Group *Group
	// Node is the NUMA node asked about; -1 (NUMA_NO_NODE): all.
	Node int
	// NrToScan is how many objects Scan should look at.
	NrToScan uint64
	// NrScanned may be set by Scan to how many it looked at, if not
	// NrToScan.
	NrScanned uint64
}

// Shrinker is a cache's reclaim callbacks. Count returns how many objects
// could be freed (0: none, and Scan is not called); Scan frees up to
// sc.NrToScan of them and returns how many it freed, or ShrinkStop. Both
// run with no hotslab lock held but shrinker_rwsem (read); they may free
// objects, and must not register or unregister shrinkers.
type Shrinker struct {
	Name  string
	Count func(sc *ShrinkControl) uint64
	Scan  func(sc *ShrinkControl) uint64
	// MemcgAware: called for each group under pressure (reclaim at a
	// group's limit calls only memcg-aware shrinkers, as the kernel's
	// shrink_slab_memcg does).
	MemcgAware bool
	// Batch is how many objects one Scan is asked for (0: 128, the
	// kernel's SHRINK_BATCH).
	Batch uint64

	// Counts, read with ShrinkerStats.
	calls, freed atomic.Uint64
}

// RegisterShrinker adds s. It fails with ErrInvalid if Count or Scan is
// nil or s is registered already.
func (c *Controller) RegisterShrinker(s *Shrinker) error {
	if s == nil || s.Count == nil || s.Scan == nil {
		return fmt.Errorf("memcg: register shrinker: Count and Scan are required: %w", ErrInvalid)
	}
	c.shrinkMu.Lock()
	defer c.shrinkMu.Unlock()
	if slices.Contains(c.shrinkers, s) {
		return fmt.Errorf("memcg: register shrinker %q: already registered: %w", s.Name, ErrInvalid)
	}
	c.shrinkers = append(c.shrinkers, s)
	return nil
}

// UnregisterShrinker removes s, waiting for any reclaim running it to
// finish. Unregistering one not registered does nothing.
func (c *Controller) UnregisterShrinker(s *Shrinker) {
	c.shrinkMu.Lock()
	defer c.shrinkMu.Unlock()
	if i := slices.Index(c.shrinkers, s); i >= 0 {
		c.shrinkers = slices.Delete(c.shrinkers, i, i+1)
	}
}

// ShrinkerStats returns how many times s's Scan was called and how many
// objects it reported freed.
func (c *Controller) ShrinkerStats(s *Shrinker) (calls, freed uint64) {
	return s.calls.Load(), s.freed.Load()
}

// shrink runs the memcg-aware shrinkers over g and its descendants, a
// larger share of each one's objects each round (a quarter, a half, all:
// the kernel's reclaim priority), until enough reports true. What the
// shrinkers free lands in stocks and slab sheaves first: after a round
// that freed anything, both are emptied before enough is asked.
func (c *Controller) shrink(g *Group, enough func() bool) {
	groups := subtree(g)
	c.shrinkMu.RLock()
	defer c.shrinkMu.RUnlock()
	for prio := 2; prio >= 0; prio-- {
		var roundFreed uint64
		for _, s := range c.shrinkers {
			if !s.MemcgAware {
				continue
			}
			for _, gg := range groups {
				sc := ShrinkControl{Group: gg, Node: -1}
				count := s.Count(&sc)
				if count == 0 {
					continue
				}
				nr := max(count>>prio, 1)
				batch := s.Batch
				if batch == 0 {
					batch = 128
				}
				for nr > 0 {
					sc.NrToScan, sc.NrScanned = min(batch, nr), 0
					freed := s.Scan(&sc)
					s.calls.Add(1)
					if freed == ShrinkStop {
						break
					}
					s.freed.Add(freed)
					roundFreed += freed
					scanned := sc.NrScanned
					if scanned == 0 || scanned > sc.NrToScan {
						scanned = sc.NrToScan
					}
					nr -= scanned
				}
			}
		}
		if roundFreed > 0 {
			c.flushSlab()
			c.drainStocks()
		}
		if enough() {
			return
		}
	}
}

// subtree returns g and its descendants, g first, from the children
// snapshots (no cgroup_mutex: a charge at a limit must not wait for a
// group's creation or removal).
func subtree(g *Group) []*Group {
	out := []*Group{g}
	for i := 0; i < len(out); i++ {
		if kids := out[i].kids.Load(); kids != nil {
			out = append(out, *kids...)
		}
	}
	return out
}
