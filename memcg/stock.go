// Per-P stocks: bytes pre-charged to one ObjCgroup, pending reference
// counts and pending slab statistics (the kernel's obj_stock).

package memcg

import (
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

// stock is one P's: touched only by a goroutine pinned to that P, or by
// Drain after its grace period (while draining keeps pinned paths away).
type stock struct {
	objcg *ObjCgroup
	bytes int64 // charged to objcg's group's counters, not yet used
	refs  int64 // objects recording objcg, not yet added to objcg.refs
	// Pending statistics of objcg, for node, by Stat.
	node  int
	stats [numStats]int64
	// hint is objcg, for reclaim's question "does any stock hold this
	// group's bytes?" asked from other Ps (stored only on a switch).
	hint atomic.Pointer[ObjCgroup]
}

// stockSlot pads a stock to a multiple of the cache line.
type stockSlot struct {
	stock
	_ [percpu.CacheLine - unsafe.Sizeof(stock{})%percpu.CacheLine]byte
}

// Compile-time check: a stockSlot is whole cache lines.
var _ [0]struct{} = [unsafe.Sizeof(stockSlot{}) % percpu.CacheLine]struct{}{}

// pinStock pins the goroutine and returns its P's stock, or nil (still
// pinned) when there is none to use: a P id beyond the stocks (GOMAXPROCS
// raised past the CPU count), or a Drain running.
func (c *Controller) pinStock() *stock {
	pid := percpu.Pin()
	if pid >= len(c.stocks) || c.draining.Load() != 0 {
		return nil
	}
	s := &c.stocks[pid].stock
	raceAcquire(unsafe.Pointer(s))
	return s
}

// unpinStock ends a pinStock section.
func unpinStock(s *stock) {
	if s != nil {
		raceReleaseMerge(unsafe.Pointer(s))
	}
	percpu.Unpin()
}

// flush empties s: its bytes back to the counters of its ObjCgroup's
// group, its pending references and statistics added. s keeps nothing.
func (s *stock) flush() {
	o := s.objcg
	if o == nil {
		return
	}
	g := o.group.Load()
	if s.bytes != 0 {
		g.uncharge(s.bytes)
	}
	if s.refs != 0 {
		o.refs.Add(s.refs)
	}
	s.flushStats(g)
	s.objcg, s.bytes, s.refs, s.node = nil, 0, 0, 0
	s.hint.Store(nil)
}

// flushStats adds the pending statistics to g.
func (s *stock) flushStats(g *Group) {
	for st, v := range s.stats {
		if v != 0 {
			g.addStat(s.node, Stat(st), v)
		}
	}
	s.stats = [numStats]int64{}
}

// use switches s to o (flushing what it held for another) and to node
// for its statistics.
func (s *stock) use(o *ObjCgroup, node int) {
	if s.objcg != o {
		s.flush()
		s.objcg = o
		s.node = node
		s.hint.Store(o)
	} else if s.node != node {
		s.flushStats(o.group.Load())
		s.node = node
	}
}

// account records, in s (switched to the object's ObjCgroup and node),
// one object of n bytes: ref +1 (charged) or -1 (uncharged), and the
// statistics.
func (s *stock) account(n int64, st Stat, ref int64) {
	s.stats[st] += n * ref
	s.refs += ref
}

// Drain empties every P's stock (the kernel's drain_all_stock): stocked
// bytes go back to the counters, pending counts and statistics are added,
// and ObjCgroups of removed groups that no object records any more are
// freed. After Drain returns, Current, Slab and the reference counts are
// exact for everything charged before the call. It stops the world once
// (a grace period); it must not be called while pinned.
func (c *Controller) Drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drainLocked()
}

// drainLocked is Drain with mu held.
func (c *Controller) drainLocked() {
	c.drainMu.Lock()
	defer c.drainMu.Unlock()
	c.flushSlab() // its uncharges land in the stocks flushed next
	c.flushStocks()
	c.freeDetachedLocked()
}

// flushStocks empties every P's stock into the counters, drainMu held:
// it marks a drain in progress and waits out every pinned section, so no
// P touches its stock while it is flushed.
func (c *Controller) flushStocks() {
	c.draining.Add(1)
	percpu.Synchronize()
	for i := range c.stocks {
		s := &c.stocks[i].stock
		raceAcquire(unsafe.Pointer(s))
		s.flush()
		raceReleaseMerge(unsafe.Pointer(s))
	}
	c.draining.Add(-1)
}

// trim returns what s holds beyond ChargeBatch to the counters once it
// holds more than two batches.
func (s *stock) trim() {
	if s.bytes > 2*ChargeBatch {
		s.objcg.group.Load().uncharge(s.bytes - ChargeBatch)
		s.bytes = ChargeBatch
	}
}

// stocksHold reports whether a P's stock may hold bytes charged to g or
// a descendant of g.
func (c *Controller) stocksHold(g *Group) bool {
	for i := range c.stocks {
		o := c.stocks[i].hint.Load()
		if o == nil {
			continue
		}
		for x := o.group.Load(); x != nil; x = x.parent {
			if x == g {
				return true
			}
		}
	}
	return false
}

// drainStocks empties every stock without freeing ObjCgroups (reclaim at
// a limit: it takes no cgroup_mutex, so a charge never waits for a group's
// creation, only, here, for a Drain in progress to end).
func (c *Controller) drainStocks() {
	c.drainMu.Lock()
	defer c.drainMu.Unlock()
	c.flushStocks()
}
