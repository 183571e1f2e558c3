// The allocation path: the P's main and spare sheaves (fast path), the
// node's barn, partial slabs and new slabs (slow path), and node-specific
// allocation.

package slab

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// GFP are per-allocation flags: mem's, of which slab takes ThisNode and
// Zero (anything else is EINVAL).
type GFP = mem.GFP

const (
	// ThisNode makes a node-specific allocation fail with ENOMEM instead
	// of falling back to another node (__GFP_THISNODE).
	ThisNode = mem.GFPThisNode
	// Zero zeroes the object (__GFP_ZERO).
	Zero = mem.GFPZero

	slabGFP = ThisNode | Zero
)

// Alloc returns an object of the cache. The fast path pops the P's main
// sheaf: no lock, no atomic instruction (on amd64, one call to an
// unpreemptible assembly function, cacheAlloc; elsewhere a pinned
// section). The object's node is the P's (or, when that node's memory is
// exhausted, the nearest with memory). Kernel: kmem_cache_alloc().
func (c *Cache) Alloc() (unsafe.Pointer, error) { return cacheAlloc(c) }

// cacheAllocGo is Alloc's pinned Go path: the whole of Alloc where there
// is no assembly, and where the assembly fast path jumps when it cannot
// serve (flush in progress, empty sheaf, destroyed handle).
func cacheAllocGo(c *Cache) (unsafe.Pointer, error) {
	k := c.c
	if !c.dead.Load() {
		pc, _ := k.pin()
		if pc != nil && pc.n > 0 {
			pc.n--
			obj := pc.objs[pc.n]
			statAdd(&pc.stat[AllocFastpath], 1)
			unpin(pc)
			return ptr(obj), nil
		}
		unpin(pc)
	}
	return c.allocSlow()
}

// Zalloc returns an object zeroed over the cache's object size (the
// largest of its merged names' sizes). Kernel: kmem_cache_zalloc().
func (c *Cache) Zalloc() (unsafe.Pointer, error) {
	p, err := c.Alloc()
	if err == nil {
		clear(unsafe.Slice((*byte)(p), c.c.objectSize.Load()))
	}
	return p, err
}

// AllocNode returns an object of node; mem.NumaNoNode means the P's node
// (the nearest with memory). When node has no free memory it falls back
// to other nodes in zonelist order, unless gfp has ThisNode: then it
// fails with an error wrapping ErrNoMemory (ENOMEM). gfp may also have
// Zero. Kernel: kmem_cache_alloc_node().
func (c *Cache) AllocNode(node int, gfp GFP) (unsafe.Pointer, error) {
	k := c.c
	if node < mem.NumaNoNode || node >= len(k.nodes) || gfp&^slabGFP != 0 {
		return nil, fmt.Errorf("slab: cache %q: node %d, gfp %#x: %w", c.name, node, uint32(gfp), ErrInvalid)
	}
	var p unsafe.Pointer
	var err error
	if node == mem.NumaNoNode && gfp&ThisNode == 0 {
		p, err = c.Alloc()
	} else {
		p, err = c.allocNode(node, gfp)
	}
	if err == nil && gfp&Zero != 0 {
		clear(unsafe.Slice((*byte)(p), k.objectSize.Load()))
	}
	return p, err
}

// allocNode serves a node-specific request: from the P's main sheaf when
// node is the P's (main holds objects of the P's node only), else
// straight from node's slabs, bypassing the sheaves. Kernel: the
// node_requested case of alloc_from_pcs() and ___slab_alloc().
func (c *Cache) allocNode(node int, gfp GFP) (unsafe.Pointer, error) {
	k := c.c
	if err := c.usable(); err != nil {
		return nil, err
	}
	pc, pid := k.pin()
	my := k.nodeOfP(pid)
	if node == mem.NumaNoNode {
		node = my
	}
	if pc != nil && node == my && pc.n > 0 {
		pc.n--
		obj := pc.objs[pc.n]
		statAdd(&pc.stat[AllocFastpath], 1)
		unpin(pc)
		return ptr(obj), nil
	}
	if pc != nil {
		statAdd(&pc.stat[AllocNodeMismatch], 1)
	}
	unpin(pc)
	obj, err := k.allocFromNode(c.name, node, gfp&ThisNode)
	return ptr(obj), err
}

// usable returns why the handle cannot allocate, or nil.
func (c *Cache) usable() error {
	switch {
	case c.dead.Load():
		return fmt.Errorf("slab: cache %q: %w", c.name, ErrDestroyed)
	case c.c.a.closed.Load():
		return fmt.Errorf("slab: cache %q: %w", c.name, ErrClosed)
	}
	return nil
}

// allocSlow: the P's main and spare sheaves are empty. Swap them, or trade
// the empty sheaf for a full one from the node's barn, or refill it from
// the node's partial and new slabs. When the P's node has no free memory,
// one object comes from another node without touching the P's sheaves
// (which hold the P's node's objects only). Kernel:
// __pcs_replace_empty_main() and ___slab_alloc().
func (c *Cache) allocSlow() (unsafe.Pointer, error) {
	k := c.c
	a := k.a
	if err := c.usable(); err != nil {
		return nil, err
	}
	for {
		pc, pid, gen := k.pinUnflushed()
		my := k.nodeOfP(pid)
		if pc == nil {
			unpin(pc)
			obj, err := k.allocFromNode(c.name, my, 0)
			return ptr(obj), err
		}
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
			unpin(pc)
			return ptr(obj), nil
		}
		empty := pc.takeMain()
		unpin(pc)

		full, err := k.getFullSheaf(c.name, my, empty)
		if errors.Is(err, ErrNoMemory) {
			// The P's node is out of memory: fall back, one object.
			obj, err := k.allocFromNode(c.name, my, 0)
			return ptr(obj), err
		}
		if err != nil {
			return nil, err
		}
		full.n--
		obj := full.objs[full.n]
		if !k.installSheaf(full, gen) {
			a.statUnpinned(k, AllocNodeMismatch)
		}
		return ptr(obj), nil
	}
}

// getFullSheaf returns a non-empty sheaf of node's objects only, from the
// barn (trading in empty, which may be nil) or refilled from node's slabs.
func (k *kmemCache) getFullSheaf(name string, node int, empty *objSheaf) (*objSheaf, error) {
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
		sh = k.newSheaf(k.sheafCap, node)
		a.statUnpinned(k, SheafAlloc)
	}
	sh.node = node
	if err := k.refill(name, sh, node, ThisNode, k.sheafCap); err != nil && sh.n == 0 {
		if cn != nil && len(sh.objs) == k.sheafCap {
			cn.barnPutEmpty(sh)
		}
		return nil, err
	}
	a.statUnpinned(k, SheafRefill)
	return sh, nil
}

// installSheaf makes sh (of one node, sh.node) the P's main or spare
// sheaf. If a flush began since gen, its objects go back to their slabs;
// if the goroutine is now on a P of another node (it migrated while
// unpinned), or the P has no room, sh goes to the barn or the slabs
// (disposeSheaf). It reports whether sh went onto the P.
func (k *kmemCache) installSheaf(sh *objSheaf, gen uint64) bool {
	pc, pid := k.pinAt(gen)
	if pc == nil {
		unpin(pc)
		if k.flushGen.Load() != gen {
			k.flushSheaf(sh)
		}
		k.disposeSheaf(sh)
		return false
	}
	if sh.node != k.nodeOfP(pid) {
		unpin(pc)
		k.disposeSheaf(sh)
		return false
	}
	var leftover *objSheaf
	switch {
	case pc.n == 0:
		leftover = pc.takeMain()
		pc.setMain(sh)
	case pc.spare == nil || pc.spare.n == 0:
		leftover, pc.spare = pc.spare, sh
	default:
		leftover = sh
	}
	unpin(pc)
	if leftover != nil {
		k.disposeSheaf(leftover)
	}
	return leftover != sh
}

// refill fills sh up to want objects from node's partial slabs, then from
// new slabs of node. If node has no free memory and gfp has no ThisNode,
// it falls back to the other nodes' partial slabs, then to a new slab
// wherever the page allocator finds one (sh.node becomes mixedNode).
// Kernel: refill_sheaf() / __refill_objects(), get_any_partial().
func (k *kmemCache) refill(name string, sh *objSheaf, node int, gfp GFP, want int) error {
	want = min(want, len(sh.objs))
	k.takePartial(sh, node, want)
	for sh.n < want {
		s, err := k.newSlab(node, ThisNode)
		if err != nil && gfp&ThisNode == 0 {
			for d := 1; d < len(k.nodes) && sh.n < want; d++ {
				k.takePartial(sh, (node+d)%len(k.nodes), want)
			}
			if sh.n >= want {
				return nil
			}
			s, err = k.newSlab(node, 0)
		}
		if err != nil {
			return &causeError{fmt.Sprintf("slab: cache %q: new slab on node %d", name, node), ErrNoMemory, err}
		}
		k.a.statUnpinned(k, AllocSlab)
		cn := k.nodes[s.node].Load()
		if cn == nil {
			k.discardSlab(s)
			return fmt.Errorf("slab: cache %q: node %d: %w: %w", name, s.node, errNoNode, ErrNoMemory)
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
		if cn.node == node {
			k.takePartialLocked(cn, sh, want)
		}
		cn.listLock.Unlock()
	}
	return nil
}

// takePartial moves objects of node's partial slabs into sh, up to want;
// sh.node becomes mixedNode if node is not sh's.
func (k *kmemCache) takePartial(sh *objSheaf, node, want int) {
	cn := k.nodes[node].Load()
	if cn == nil {
		return
	}
	n := sh.n
	cn.listLock.Lock()
	k.takePartialLocked(cn, sh, want)
	cn.listLock.Unlock()
	if sh.n > n && node != sh.node {
		sh.node = mixedNode
	}
}

// takeObjLocked pops one object off s. Called with its node's list_lock.
func (k *kmemCache) takeObjLocked(cn *cacheNode, s *slabHdr) uintptr {
	obj := k.popFree(s)
	s.inuse++
	cn.nrFree--
	return obj
}

func (k *kmemCache) takePartialLocked(cn *cacheNode, sh *objSheaf, want int) {
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

// allocFromNode takes one object from node's slabs directly, bypassing
// sheaves (falling back to other nodes unless gfp has ThisNode). Kernel:
// ___slab_alloc() for a node-specific request.
func (k *kmemCache) allocFromNode(name string, node int, gfp GFP) (uintptr, error) {
	var buf [1]uintptr
	one := objSheaf{}
	one.objs, one.node = buf[:], node
	if err := k.refill(name, &one, node, gfp, 1); err != nil {
		return 0, err
	}
	return buf[0], nil
}
