// Charging and uncharging accounted objects, and reclaim at the limits.

package memcg

import (
	"fmt"
)

// maxReclaimRetries is how many times a charge at memory.max reclaims
// before it fails (the kernel's MAX_RECLAIM_RETRIES is 16; a round here
// drains every stock and runs every memcg-aware shrinker).
const maxReclaimRetries = 4

// Charge charges one accounted object of n bytes (its size plus its
// per-object reference) on node to g: to the group a charge through g
// uses now (g, or its nearest online ancestor once g is removed) and
// every ancestor. It returns the id of the ObjCgroup the object must
// record, for Uncharge. st is the statistic it counts in (memory.stat's
// slab_reclaimable, slab_unreclaimable or only kernel).
//
// On a P whose stock holds that ObjCgroup's bytes it is a pinned
// subtraction; otherwise it charges the counters a batch at a time. At
// memory.max it reclaims (stocks, then shrinkers) and then fails with an
// error wrapping ErrNoMemory (syscall.ENOMEM), counting "max" and "oom"
// in memory.events. Above memory.high it reclaims once and succeeds.
// Kernel: obj_cgroup_charge() with mod_objcg_state().
func (c *Controller) Charge(g *Group, n int64, node int, st Stat) (uint32, error) {
	if n <= 0 || g == nil || g.ctrl != c || st < 0 || st >= numStats {
		return 0, fmt.Errorf("memcg: charge %d bytes: %w", n, ErrInvalid)
	}
	s := c.pinStock()
	if s != nil {
		// target is read inside the pinned section: a removal's drain
		// (a grace period) sees this charge's reference in the stock.
		if o := g.target(); s.objcg == o && s.bytes >= n {
			s.bytes -= n
			if s.node != node {
				s.use(o, node)
			}
			s.account(n, st, 1)
			unpinStock(s)
			return o.id, nil
		}
	}
	unpinStock(s)
	return c.chargeSlow(g, n, node, st)
}

// chargeSlow charges the counters (a batch, or n alone near the limit)
// and leaves the rest in the P's stock.
func (c *Controller) chargeSlow(g *Group, n int64, node int, st Stat) (uint32, error) {
	for {
		o := g.target()
		og := o.group.Load()
		charged, err := c.chargeCounters(og, n)
		if err != nil {
			return 0, err
		}
		runHook(hookChargeCounted)
		s := c.pinStock()
		if g.target() == o && o.group.Load() == og {
			if s != nil {
				s.use(o, node)
				s.bytes += charged - n
				s.account(n, st, 1)
				s.trim()
				unpinStock(s)
				return o.id, nil
			}
			// No stock (a Drain runs, or no slot for this P): count
			// directly. A removal's drain waits for this pinned
			// section, so o is not freed under it.
			o.refs.Add(1)
			og.addStat(node, st, n)
			unpinStock(s)
			if charged > n {
				og.uncharge(charged - n)
			}
			return o.id, nil
		}
		// g (or the group o pointed to) was removed meanwhile: give the
		// charge back and charge through the new target.
		unpinStock(s)
		og.uncharge(charged)
	}
}

// chargeCounters charges g's counters: n plus a batch for the stock if
// that fits, else n alone; at the limit it reclaims and retries, and
// then fails.
func (c *Controller) chargeCounters(g *Group, n int64) (int64, error) {
	for retry := 0; ; retry++ {
		charged := n + ChargeBatch
		over := g.tryCharge(charged)
		if over != nil {
			charged = n
			over = g.tryCharge(n)
		}
		if over == nil {
			if h := g.overHigh(); h != nil {
				h.event(EventHigh)
				c.reclaim(h, func() bool { return h.usage.Load() <= h.high.Load() })
			}
			return charged, nil
		}
		over.event(EventMax)
		if retry == maxReclaimRetries {
			over.event(EventOOM)
			return 0, fmt.Errorf("memcg: charge %d bytes to %s: %s at memory.max %d: %w",
				n, g.Path(), over.Path(), over.max.Load(), ErrNoMemory)
		}
		c.reclaim(over, func() bool { return over.usage.Load()+n <= over.max.Load() })
	}
}

// Uncharge uncharges an object of n bytes on node that recorded id (its
// ObjCgroup): from the group that ObjCgroup points to now and every
// ancestor. An id of 0, or of no ObjCgroup, is ignored. Kernel:
// obj_cgroup_uncharge() with mod_objcg_state().
func (c *Controller) Uncharge(id uint32, n int64, node int, st Stat) {
	o := c.ObjCgroupOf(id)
	if o == nil || n <= 0 || st < 0 || st >= numStats {
		return
	}
	s := c.pinStock()
	if s != nil {
		s.use(o, node)
		s.bytes += n
		s.account(n, st, -1)
		s.trim()
		unpinStock(s)
		return
	}
	g := o.group.Load()
	g.uncharge(n)
	g.addStat(node, st, -n)
	o.refs.Add(-1)
	unpinStock(s)
}

// reclaim tries to make enough true for g (its usage under its max with
// room for a charge, or under its high): drain the stocks if any holds
// g's bytes, then flush the charges the slab layer keeps for reuse, then
// run the memcg-aware shrinkers over g and its descendants. Kernel:
// try_charge_memcg's drain_all_stock and try_to_free_mem_cgroup_pages
// (shrink_slab).
func (c *Controller) reclaim(g *Group, enough func() bool) {
	if c.stocksHold(g) {
		c.drainStocks()
		if enough() {
			return
		}
	}
	// Freed objects the slab layer keeps charged for reuse.
	c.flushSlab()
	c.drainStocks()
	if enough() {
		return
	}
	c.shrink(g, enough)
}
