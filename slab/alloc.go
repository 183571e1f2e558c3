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
	if err := k.shouldFail(c.name); err != nil {
		return nil, err
	}
	if k.debug != 0 {
		return c.allocDebug(-1, 0)
	}
	if !c.dead.Load() {
		pc, _ := k.pin()
		if pc != nil && pc.n > 0 {
			pc.n--
			obj := pc.objs[pc.n]
			statAdd(&pc.stat[AllocFastpath], 1)
			unpin(pc)
			if k.acct || k.initAlloc {
				k.taken(obj)
			}
			return ptr(obj), nil
		}
		unpin(pc)
	}
	p, err := c.allocSlow(mem.NumaNoNode, 0)
	if err == nil && (k.acct || k.initAlloc) {
		k.taken(uintptr(p))
	}
	return p, err
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
	} else if err = k.shouldFail(c.name); err == nil {
		if k.debug != 0 {
			p, err = c.allocDebug(node, gfp&ThisNode)
		} else {
			p, err = c.allocNode(node, gfp)
		}
	}
	if err == nil && gfp&Zero != 0 {
		clear(unsafe.Slice((*byte)(p), k.objectSize.Load()))
	}
	return p, err
}

// allocNode serves a node-specific request: from the P's main sheaf when
// node is the P's (main holds objects of the P's node only), refilling it
// like Alloc when it is empty; else straight from node's slabs, bypassing
// the sheaves. Kernel: the node_requested case of alloc_from_pcs() and
// ___slab_alloc().
func (c *Cache) allocNode(node int, gfp GFP) (unsafe.Pointer, error) {
	k := c.c
	if err := c.usable(); err != nil {
		return nil, err
	}
	pc, pid := k.pin()
	if node == mem.NumaNoNode {
		node = k.nodeOfP(pid)
	}
	if pc != nil && node == k.nodeOfP(pid) && pc.n > 0 {
		pc.n--
		obj := pc.objs[pc.n]
		statAdd(&pc.stat[AllocFastpath], 1)
		unpin(pc)
		if k.acct || k.initAlloc {
			k.taken(obj)
		}
		return ptr(obj), nil
	}
	unpin(pc)
	p, err := c.allocSlow(node, gfp)
	if err == nil && (k.acct || k.initAlloc) {
		k.taken(uintptr(p))
	}
	return p, err
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

// allocSlow: the P's main sheaf is empty (or node, if not NumaNoNode, is
// not the P's). Swap main with a non-empty spare, or install a full sheaf
// of the P's node from the node's barn or refilled from its slabs (the
// empty main becoming the spare if there is none), and pop. When the P's
// node has no free memory, or node is another node, one object comes
// straight from the slabs without touching the P's sheaves (which hold
// the P's node's objects only): allocFromNode. Kernel:
// __pcs_replace_empty_main() and ___slab_alloc().
func (c *Cache) allocSlow(node int, gfp GFP) (unsafe.Pointer, error) {
	k := c.c
	if err := c.usable(); err != nil {
		return nil, err
	}
	pc, pid, gen := k.pinUnflushed()
	my := k.nodeOfP(pid)
	want := node
	if want == mem.NumaNoNode {
		want = my
	}
	if pc == nil || want != my {
		if pc != nil {
			statAdd(&pc.stat[AllocNodeMismatch], 1)
		}
		unpin(pc)
		obj, err := k.allocFromNode(c.name, want, gfp, node != mem.NumaNoNode)
		return ptr(obj), err
	}
	statAdd(&pc.stat[AllocSlowpath], 1)
	if sp := pc.spare; sp != nil && sp.n > 0 {
		pc.spare = pc.takeMain()
		pc.setMain(sp)
	}
	if pc.n > 0 {
		// The spare, or refilled by a free on this P since the fast
		// path looked.
		pc.n--
		obj := pc.objs[pc.n]
		unpin(pc)
		return ptr(obj), nil
	}
	// An empty spare is the vessel to refill.
	var vessel *objSheaf
	if sp := pc.spare; sp != nil && len(sp.objs) == k.sheafCap {
		vessel, pc.spare = sp, nil
	}
	unpin(pc)

	full, err := k.getFullSheaf(c.name, my, vessel)
	if errors.Is(err, ErrNoMemory) {
		// The P's node is out of memory.
		obj, err := k.allocFromNode(c.name, want, gfp, node != mem.NumaNoNode)
		return ptr(obj), err
	}
	if err != nil {
		return nil, err
	}
	full.n--
	obj := full.objs[full.n]
	k.installSheaf(full, gen)
	return ptr(obj), nil
}

// getFullSheaf returns a non-empty sheaf of node's objects only: a full
// one from the barn (vessel, an empty sheaf or nil, going to the barn's
// empty list), or vessel (or a new sheaf) refilled from node's slabs.
func (k *kmemCache) getFullSheaf(name string, node int, vessel *objSheaf) (*objSheaf, error) {
	a := k.a
	cn := k.nodes[node].Load()
	if cn != nil {
		if full := cn.barnGetFull(k, vessel); full != nil {
			a.statUnpinned(k, BarnGet)
			return full, nil
		}
	}
	a.statUnpinned(k, BarnGetFail)
	sh := vessel
	if sh == nil {
		if cn != nil {
			sh = cn.barnGetEmpty()
		}
		if sh == nil {
			sh = k.newSheaf(k.sheafCap, node)
			a.statUnpinned(k, SheafAlloc)
		}
	}
	sh.node = node
	if err := k.refill(name, sh, node, ThisNode, k.sheafCap); err != nil && sh.n == 0 {
		if cn == nil || !cn.barnPutEmpty(sh) {
			a.statUnpinned(k, SheafFree)
		}
		return nil, err
	}
	a.statUnpinned(k, SheafRefill)
	return sh, nil
}

// installSheaf makes sh (of one node, sh.node) the P's main sheaf if main
// is empty (the old main becoming the spare if there is none, as the
// kernel keeps it), else its spare if that is empty. If a flush began
// since gen, its objects go back to their slabs; if the goroutine is now
// on a P of another node (it migrated while unpinned), or the P has no
// room, sh goes to the barn or the slabs (disposeSheaf). It reports
// whether sh went onto the P.
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
		k.a.statUnpinned(k, AllocNodeMismatch)
		k.disposeSheaf(sh)
		return false
	}
	var leftover *objSheaf
	switch {
	case pc.n == 0:
		old := pc.takeMain()
		pc.setMain(sh)
		if old != nil && pc.spare == nil {
			pc.spare = old
		} else {
			leftover = old
		}
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
// it falls back to the other nodes' partial slabs (in node order after
// node), then to a new slab wherever the page allocator's zonelist finds
// one (sh.node becomes mixedNode).
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
		if int(s.node) != sh.node {
			sh.node = mixedNode
		}
		cn.listLock.Lock()
		cn.nrSlabs++
		cn.nrObjs += int64(k.objectsOf(s))
		cn.nrFree += int64(k.objectsOf(s))
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
// the P's sheaves. A node-specific request (specific) whose node has no
// free slab memory first gets back what the cache holds of the node
// elsewhere — the node's barn and, for ThisNode, every P's sheaves
// (reclaim) — before falling back to other nodes (never with ThisNode:
// then it fails with ErrNoMemory). Kernel: ___slab_alloc() for a
// node-specific request.
func (k *kmemCache) allocFromNode(name string, node int, gfp GFP, specific bool) (uintptr, error) {
	var buf [1]uintptr
	one := objSheaf{}
	one.objs, one.node = buf[:], node
	if !specific {
		if err := k.refill(name, &one, node, 0, 1); err != nil {
			return 0, err
		}
		return buf[0], nil
	}
	err := k.refill(name, &one, node, ThisNode, 1)
	if errors.Is(err, ErrNoMemory) && k.a.sys.NodeHasMemory(node) {
		// (A node without memory has no slab: nothing to reclaim.)
		k.reclaim(node, gfp&ThisNode != 0)
		err = k.refill(name, &one, node, ThisNode, 1)
	}
	if errors.Is(err, ErrNoMemory) && gfp&ThisNode == 0 {
		err = k.refill(name, &one, node, 0, 1)
	}
	if err != nil {
		return 0, err
	}
	return buf[0], nil
}

// reclaim gives the slabs back the free objects of node that k caches:
// those in the node's barn and, if all, in every P's sheaves (which takes
// a flush: a grace period). Kernel: none needed — SLUB's remote frees go
// straight to their slab; here they travel in sheaves.
func (k *kmemCache) reclaim(node int, all bool) {
	if all {
		k.a.beginFlush(k)
		k.flushPcpuLocked()
		k.a.endFlush(k)
	}
	if cn := k.nodes[node].Load(); cn != nil {
		k.flushBarn(cn)
	}
}
