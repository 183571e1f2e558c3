//go:build linux && race

// Per-P list words and the fast paths' page-state changes under the race
// detector: accessed atomically, because the hand-off between a P and the
// drainer is ordered by a stop-the-world grace period, which the detector
// does not see.

package mem

import "sync/atomic"

func pload(p *uintptr) uintptr     { return atomic.LoadUintptr(p) }
func pstore(p *uintptr, v uintptr) { atomic.StoreUintptr(p, v) }

func setStateFast(p *Page, v uint32)        { p.storeState(v) }
func claimFast(p *Page, old, v uint32) bool { return p.casState(old, v) }
