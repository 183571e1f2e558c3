// failslab: fault injection into slab allocations.

package slab

import (
	"fmt"

	"github.com/hotslab/hotslab/fault"
)

// Failslab returns the allocator's failslab knobs: when they say so an
// allocation (Alloc, AllocNode, AllocBulk, a group's, a kmalloc) fails
// with an error wrapping ErrNoMemory (ENOMEM) and fault.ErrInjected,
// having changed nothing — no object taken, nothing charged. While they
// are active every allocation takes the Go paths, which ask them (the
// kernel's should_failslab() in slab_pre_alloc_hook). Kernel: failslab.
func (a *Allocator) Failslab() *fault.Attr { return a.failslab }

// SetFailslabCacheFilter sets failslab's cache-filter: when on, only
// caches with SetFailslab(true) fail.
func (a *Allocator) SetFailslabCacheFilter(on bool) { a.failslabFilter.Store(on) }

// FailslabCacheFilter reports failslab's cache-filter.
func (a *Allocator) FailslabCacheFilter() bool { return a.failslabFilter.Load() }

// SetFailslab marks the cache for failslab's cache-filter (the kernel's
// /sys/kernel/slab/<cache>/failslab, SLAB_FAILSLAB). It applies to the
// underlying cache, so to every alias.
func (c *Cache) SetFailslab(on bool) { c.c.failslab.Store(on) }

// Failslab reports the cache's failslab mark.
func (c *Cache) Failslab() bool { return c.c.failslab.Load() }

// shouldFail is should_failslab() for an allocation from k.
func (k *kmemCache) shouldFail(name string) error {
	a := k.a
	if !a.failslab.Active() {
		return nil
	}
	if a.failslabFilter.Load() && !k.failslab.Load() {
		return nil
	}
	if !a.failslab.ShouldFail(int64(k.objectSize.Load())) {
		return nil
	}
	return &causeError{fmt.Sprintf("slab: cache %q", name), ErrNoMemory, fault.ErrInjected}
}

// failslabChanged turns the assembly alloc paths off while failslab is
// active (they cannot ask it) and back on after.
func (a *Allocator) failslabChanged(bool) {
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	for _, k := range a.caches {
		if k.flushing.Load() == 0 {
			k.setFastProcs(k.procsForAsm())
		}
	}
}
