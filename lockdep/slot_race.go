//go:build race

package lockdep

import "sync/atomic"

// Under the race detector the per-P counters are atomic: the detector does
// not know that a stop-the-world grace period orders the plain accesses.

func (c *prwSlot) inc()        { atomic.AddInt64(&c.n, 1) }
func (c *prwSlot) dec()        { atomic.AddInt64(&c.n, -1) }
func (c *prwSlot) load() int64 { return atomic.LoadInt64(&c.n) }
