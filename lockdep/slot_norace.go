//go:build !race

package lockdep

// The counters are touched only by a goroutine pinned to the slot's P (or
// under s.mu), and read by a writer after a grace period: plain loads and
// stores, no atomic instruction on the reader's path.

func (c *prwSlot) inc()        { c.n++ }
func (c *prwSlot) dec()        { c.n-- }
func (c *prwSlot) load() int64 { return c.n }
