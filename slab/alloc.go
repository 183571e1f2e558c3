// The allocation path: per-P sheaf, barn, partial slabs, new slabs.

package slab

import (
	"fmt"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/mem"
)

// GFP are per-allocation flags.
type GFP uint32

const (
	// ThisNode makes a node-specific allocation fail instead of falling
	// back to another node (__GFP_THISNODE).
	ThisNode GFP = 1 << iota
	// Zero zeroes the object (__GFP_ZERO).
	Zero
)

// Alloc returns an object of the cache. The fast path pops the P's sheaf
// with the goroutine pinned to its P: no lock, no atomic instruction (on
// amd64, one call to an unpreemptible assembly function, cacheAlloc;
// elsewhere a pinned section). Kernel: kmem_cache_alloc().
func (c *Cache) Alloc() (unsafe.Pointer, error) { return cacheAlloc(c) }

// cacheAllocGo is Alloc's pinned Go path: the whole of Alloc where there
// is no assembly, and where the assembly fast path jumps when it cannot
// serve (flush in progress, empty sheaf).
func cacheAllocGo(c *Cache) (unsafe.Pointer, error) {
	k := c.c
	pid := percpu.Pin()
	if k.flushing.Load() == 0 && uint(pid) < uint(len(k.pcpu)) {
		pc := &k.pcpu[pid]
		raceAcquire(unsafe.Pointer(pc))
		if pc.n > 0 {
			pc.n--
			obj := pc.objs[pc.n]
			statAdd(&pc.stat[AllocFastpath], 1)
			raceReleaseMerge(unsafe.Pointer(pc))
			percpu.Unpin()
			return ptr(obj), nil
		}
		raceReleaseMerge(unsafe.Pointer(pc))
	}
	percpu.Unpin()
	return c.allocSlow(mem.NumaNoNode, 0)
}

// Zalloc returns a zeroed object. Kernel: kmem_cache_zalloc().
func (c *Cache) Zalloc() (unsafe.Pointer, error) {
	p, err := c.Alloc()
	if err == nil {
		clear(unsafe.Slice((*byte)(p), c.c.objectSize))
	}
	return p, err
}

// AllocNode returns an object from node, falling back to other nodes in
// zonelist order when node has no memory, unless gfp has ThisNode.
// mem.NumaNoNode means the local node. Kernel: kmem_cache_alloc_node().
func (c *Cache) AllocNode(node int, gfp GFP) (unsafe.Pointer, error) {
	if node < mem.NumaNoNode || node >= c.c.a.sys.NumNodes() || gfp&^(ThisNode|Zero) != 0 {
		return nil, fmt.Errorf("%w: cache %q: node %d, gfp %#x", ErrInvalid, c.name, node, uint32(gfp))
	}
	var p unsafe.Pointer
	var err error
	if node == mem.NumaNoNode && gfp&ThisNode == 0 {
		p, err = c.Alloc()
	} else {
		p, err = c.allocSlow(node, gfp)
	}
	if err == nil && gfp&Zero != 0 {
		clear(unsafe.Slice((*byte)(p), c.c.objectSize))
	}
	return p, err
}

// allocSlow: the P's main and spare sheaves are empty. Swap them, or trade
// the empty sheaf for a full one from the node's barn, or refill it from
// partial slabs and new slabs. Kernel: __pcs_replace_empty_main() and
// ___slab_alloc().
func (c *Cache) allocSlow(node int, gfp GFP) (unsafe.Pointer, error) {
	k := c.c
	a := k.a
	if c.dead.Load() {
		return nil, fmt.Errorf("%w: %q", ErrDestroyed, c.name)
	}
	for {
		pid, gen := a.pinUnflushed()
		my := a.localNode(pid)
		if uint(pid) >= uint(len(k.pcpu)) || (node != mem.NumaNoNode && node != my) || gfp&ThisNode != 0 && node == mem.NumaNoNode {
			if uint(pid) < uint(len(k.pcpu)) {
				pc := &k.pcpu[pid]
				raceAcquire(unsafe.Pointer(pc))
				statAdd(&pc.stat[AllocNodeMismatch], 1)
				raceReleaseMerge(unsafe.Pointer(pc))
			}
			percpu.Unpin()
			if node == mem.NumaNoNode {
				node = my
			}
			obj, err := k.allocFromNode(node, gfp)
			return ptr(obj), err
		}
		pc := &k.pcpu[pid]
		raceAcquire(unsafe.Pointer(pc))
		statAdd(&pc.stat[AllocSlowpath], 1)
		if sp := pc.spare; sp != nil && sp.n > 0 {
			pc.spare = pc.takeMain()
			pc.setMain(sp)
		}
		if pc.n > 0 {
			// The spare, or refilled by a free on this P since the
			// fast path looked.
			pc.n--
			obj := pc.objs[pc.n]
			raceReleaseMerge(unsafe.Pointer(pc))
			percpu.Unpin()
			return ptr(obj), nil
		}
		empty := pc.takeMain()
		raceReleaseMerge(unsafe.Pointer(pc))
		percpu.Unpin()

		full, err := k.getFullSheaf(my, empty)
		if err != nil {
			return nil, err
		}
		obj, ok := k.installSheaf(full, gen, true)
		if ok {
			return ptr(obj), nil
		}
		// A flush ran meanwhile: the sheaf went back to the slabs. Retry.
	}
}

// getFullSheaf returns a full (or at least non-empty) sheaf for node,
// trading in empty (which may be nil).
func (k *cache) getFullSheaf(node int, empty *sheaf) (*sheaf, error) {
	a := k.a
	cn := k.nodes[node].Load()
	if cn != nil {
		if full := cn.barnGetFull(k, empty); full != nil {
			a.statUnpinned(k, BarnGet)
			return full, nil
		}
	}
	a.statUnpinned(k, BarnGetFail)
	sh := empty
	if sh == nil || len(sh.objs) != k.sheafCap {
		sh = k.newSheaf(k.sheafCap)
		a.statUnpinned(k, SheafAlloc)
	}
	if err := k.refill(sh, node, 0, k.sheafCap); err != nil && sh.n == 0 {
		return nil, err
	}
	a.statUnpinned(k, SheafRefill)
	return sh, nil
}

// installSheaf pops one object from full and makes full the P's main (or
// spare) sheaf. If a flush ran since gen, or the P cannot take the sheaf,
// it disposes of it instead; ok is false only when no object was taken.
func (k *cache) installSheaf(full *sheaf, gen uint64, alloc bool) (obj uintptr, ok bool) {
	a := k.a
	var leftover *sheaf
	pid := percpu.Pin()
	if a.flushing.Load() != 0 || a.flushGen.Load() != gen || uint(pid) >= uint(len(k.pcpu)) {
		percpu.Unpin()
		k.flushSheaf(full)
		k.disposeSheaf(full)
		return 0, false
	}
	pc := &k.pcpu[pid]
	raceAcquire(unsafe.Pointer(pc))
	if alloc {
		full.n--
		obj = full.objs[full.n]
	}
	switch {
	case pc.main == nil || pc.n == 0:
		leftover = pc.takeMain()
		pc.setMain(full)
	case pc.spare == nil || pc.spare.n == 0:
		leftover, pc.spare = pc.spare, full
	default:
		leftover = full
	}
	raceReleaseMerge(unsafe.Pointer(pc))
	percpu.Unpin()
	if leftover != nil {
		k.disposeSheaf(leftover)
	}
	return obj, true
}

// refill fills sh up to want objects from node's partial slabs, then from
// new slabs. Kernel: refill_sheaf() / __refill_objects().
func (k *cache) refill(sh *sheaf, node int, gfp GFP, want int) error {
	mgfp := mem.GFP(0)
	if gfp&ThisNode != 0 {
		mgfp |= mem.GFPThisNode
	}
	want = min(want, len(sh.objs))
	if cn := k.nodes[node].Load(); cn != nil {
		cn.listLock.Lock()
		k.takePartialLocked(cn, sh, want)
		cn.listLock.Unlock()
	}
	for sh.n < want {
		s, err := k.newSlab(node, mgfp)
		if err != nil {
			return fmt.Errorf("%w: cache %q on node %d: %w", ErrNoMemory, k.name, node, err)
		}
		k.a.statUnpinned(k, AllocSlab)
		cn := k.nodes[s.node].Load()
		if cn == nil {
			k.discardSlab(s)
			return fmt.Errorf("%w: cache %q: %w %d", ErrNoMemory, k.name, errNoNode, s.node)
		}
		cn.listLock.Lock()
		cn.nrSlabs++
		cn.nrFree += int64(k.objects)
		for sh.n < want && s.freelist != 0 {
			sh.objs[sh.n] = k.takeObjLocked(cn, s)
			sh.n++
		}
		if s.freelist != 0 {
			cn.partial.push(k.a, s)
		}
		// More partial slabs may have appeared meanwhile.
		k.takePartialLocked(cn, sh, want)
		cn.listLock.Unlock()
	}
	return nil
}

// takeObjLocked pops one object off s. Called with its node's list_lock.
func (k *cache) takeObjLocked(cn *cacheNode, s *slabHdr) uintptr {
	obj := k.popFree(s)
	s.inuse++
	cn.nrFree--
	return obj
}

func (k *cache) takePartialLocked(cn *cacheNode, sh *sheaf, want int) {
	for sh.n < want {
		s := cn.partial.first(k.a)
		if s == nil {
			return
		}
		for sh.n < want && s.freelist != 0 {
			sh.objs[sh.n] = k.takeObjLocked(cn, s)
			sh.n++
		}
		if s.freelist == 0 {
			cn.partial.remove(k.a, s)
		}
	}
}

// allocFromNode takes one object from node directly, bypassing sheaves.
// Kernel: ___slab_alloc() for a node-specific request.
func (k *cache) allocFromNode(node int, gfp GFP) (uintptr, error) {
	var one sheaf
	var buf [1]uintptr
	one.objs = buf[:]
	if err := k.refill(&one, node, gfp, 1); err != nil {
		return 0, err
	}
	return buf[0], nil
}
