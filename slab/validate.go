// Validation of a cache's slabs: the kernel's validate_slab_cache().

package slab

import (
	"errors"
	"fmt"
)

// ErrCorrupt is what Validate's error wraps when it found a slab whose
// metadata is damaged.
var ErrCorrupt = errors.New("slab metadata corrupted")

// Validate flushes the cache's per-P sheaves and checks every slab on
// its nodes' partial lists — and, for a debug cache, every slab it has,
// full ones too, and every object in each (its red zone, and its poison
// if free) — as the kernel's validate_slab_cache() does: the slab header (cache, base, objects
// in use), its freelist (every entry an object of the slab, no loop, in
// use plus free equal to the slab's objects) and the node's counts. It
// returns nil or an error wrapping ErrCorrupt naming the first problem
// and how many there were. It takes slab_flush_lock and each node's
// list_lock, never slab_mutex (the sysfs validate attribute calls it).
// Kernel: validate_store() → validate_slab_cache().
func (c *Cache) Validate() error { return c.c.validate(c.name) }

func (k *kmemCache) validate(name string) error {
	if k.a.closed.Load() {
		return fmt.Errorf("slab: validate %s: %w", name, ErrClosed)
	}
	k.a.beginFlush(k)
	k.flushPcpuLocked()
	k.a.endFlush(k)
	var problems []string
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		cn.listLock.Lock()
		count := 0
		for s := cn.partial.first(k.a); s != nil && count <= cn.partial.n; s = k.a.nextOf(s) {
			if p := k.validateSlab(s); p != "" {
				problems = append(problems, fmt.Sprintf("node %d slab %#x: %s", n, s.base, p))
			}
			count++
		}
		if count != cn.partial.n {
			problems = append(problems, fmt.Sprintf("node %d: partial list has %d slabs, counted %d", n, count, cn.partial.n))
		}
		if cn.nrFree < 0 || cn.nrFree > cn.nrObjs || cn.nrSlabs < int64(cn.partial.n) {
			problems = append(problems, fmt.Sprintf("node %d: counts slabs %d objects %d free %d partial %d", n, cn.nrSlabs, cn.nrObjs, cn.nrFree, cn.partial.n))
		}
		cn.listLock.Unlock()
	}
	if k.debug != 0 {
		// A debug cache knows all its slabs, full ones too: every
		// object of every slab is checked.
		k.debugLock.Lock()
		bases := make([]uintptr, 0, len(k.debugSlabs))
		for b := range k.debugSlabs {
			bases = append(bases, b)
		}
		k.debugLock.Unlock()
		for _, base := range bases {
			h := k.hdrAt(base)
			if h == nil {
				continue
			}
			cn := k.nodes[h.node].Load()
			if cn == nil {
				continue
			}
			cn.listLock.Lock()
			if h.cache == k.id && h.base == base && !h.onList { // partial ones were checked above
				if p := k.validateSlab(h); p != "" {
					problems = append(problems, fmt.Sprintf("node %d slab %#x: %s", h.node, base, p))
				}
			}
			cn.listLock.Unlock()
		}
	}
	if len(problems) > 0 {
		err := fmt.Errorf("slab: validate %s: %s (%d problems): %w", name, problems[0], len(problems), ErrCorrupt)
		k.a.log.Error("BUG "+name+": "+problems[0], "problems", len(problems))
		return err
	}
	return nil
}

// validateDebugSlab checks every object of a debug cache's slab (list_lock
// held): a free one must be marked free with its poison intact, an
// allocated one marked allocated with its red zone intact. Kernel:
// validate_slab() → check_object().
func (k *kmemCache) validateDebugSlab(s *slabHdr, objects int) string {
	onFreelist := map[uintptr]bool{}
	if s.freelist != 0 {
		for obj := s.base + uintptr(s.freelist-1); obj != 0 && len(onFreelist) < objects; obj = k.getFree(obj) {
			onFreelist[obj] = true
		}
	}
	for i := 0; i < objects; i++ {
		addr := s.base + uintptr(i*k.size)
		st := *k.state(addr)
		if onFreelist[addr] {
			if p := k.checkTaken(addr); p != "" {
				return fmt.Sprintf("object %#x: %s", addr, p)
			}
		} else if st != redActive && st != redInactive || st == redActive && k.debug&RedZone != 0 && !k.slackIntact(addr) {
			return fmt.Sprintf("object %#x: Redzone overwritten", addr)
		}
	}
	return ""
}

// validateSlab checks one slab (list_lock held) and describes the first
// problem, or returns "". Kernel: check_slab() and on_freelist().
func (k *kmemCache) validateSlab(s *slabHdr) string {
	objects := k.objectsOf(s)
	if s.cache != k.id {
		return fmt.Sprintf("cache id %d, want %d", s.cache, k.id)
	}
	if k.a.sys.PageOf(s.base) == nil || hdr(k.a.sys.PageOf(s.base)) != s {
		return "header not at its base page"
	}
	if int(s.inuse) > objects {
		return fmt.Sprintf("inuse %d > objects %d", s.inuse, objects)
	}
	free := 0
	slabBytes := k.slabBytesOf(s)
	if s.freelist != 0 {
		obj := s.base + uintptr(s.freelist-1)
		for obj != 0 {
			off := obj - s.base
			if off >= slabBytes || !k.objStart(s, obj) {
				return fmt.Sprintf("freelist entry %#x is not an object of the slab", obj)
			}
			if free++; free > objects {
				return "freelist loops"
			}
			obj = k.getFree(obj)
		}
	}
	if free+int(s.inuse) != objects {
		return fmt.Sprintf("Wrong object count: %d free + %d in use, %d objects", free, s.inuse, objects)
	}
	if k.debug != 0 {
		return k.validateDebugSlab(s, objects)
	}
	return ""
}
