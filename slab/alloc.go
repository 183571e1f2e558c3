package slab

import (
	"fmt"
	"sync/atomic"
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

// sheaf is an array of free objects (the kernel's struct slab_sheaf).
type sheaf struct {
	n    int
	objs []uintptr            // len == capacity
	node int                  // a remote sheaf's node (pcpuSheaves.remote)
	_    [cacheLine - 40]byte // sheaves of different Ps never share a line
}

func (k *cache) newSheaf(capacity int) *sheaf {
	return &sheaf{objs: make([]uintptr, capacity)}
}

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

// localNode returns the node whose objects P pid caches (for a P beyond
// the per-P arrays, that of a P sharing its slot modulo their length).
func (a *Allocator) localNode(pid int) int {
	return int(a.memNode[uint(pid)%uint(len(a.memNode))].Load())
}

// statUnpinned counts an event from code that runs unpinned (slow paths):
// an atomic add on a per-cache counter, exact whatever the P.
func (a *Allocator) statUnpinned(k *cache, s Stat) {
	atomic.AddUint64(&k.slowStat[s], 1)
}

// pinUnflushed pins the goroutine to its P once no flush is in progress
// (waiting for one that is), returning the P and the flush generation
// read before pinning (installSheaf compares it to notice a flush that
// ran while the caller was unpinned). The caller unpins.
func (a *Allocator) pinUnflushed() (pid int, gen uint64) {
	for {
		gen = a.flushGen.Load()
		pid = percpu.Pin()
		if a.flushing.Load() == 0 {
			return pid, gen
		}
		percpu.Unpin()
		a.waitFlush()
	}
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

// disposeSheaf puts a sheaf that left a P somewhere: empty ones to the
// barn, full ones to the barn if it has room, the rest back to the slabs.
func (k *cache) disposeSheaf(sh *sheaf) {
	a := k.a
	node := a.localNode(0)
	if sh.n > 0 {
		if s, _ := a.slabOf(sh.objs[0]); s != nil {
			node = int(s.node)
		}
	}
	cn := k.nodes[node].Load()
	if sh.n == len(sh.objs) && sh.n == k.sheafCap && cn != nil && cn.barnPutFull(sh) {
		a.statUnpinned(k, BarnPut)
		return
	}
	if sh.n > 0 {
		k.flushSheaf(sh)
	}
	if cn == nil || len(sh.objs) != k.sheafCap || !cn.barnPutEmpty(sh) {
		a.statUnpinned(k, SheafFree)
	}
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

// Free returns an object to its cache. Pointers that are not objects of
// this cache are refused and reported (see Options.OnInvalidFree); nothing
// changes. The fast path validates the pointer (its page's slab header
// names this cache, and it is an object's start) and pushes it onto the
// P's sheaf; an object of another node goes home through the P's remote
// sheaf. On amd64 all of that is one unpreemptible assembly function,
// cacheFree. Kernel: kmem_cache_free().
func (c *Cache) Free(p unsafe.Pointer) { cacheFree(c, p) }

// cacheFreeGo is Free's pinned Go path: the whole of Free where there is
// no assembly, and where the assembly fast path jumps for everything but
// a valid local free into a sheaf with room (so invalid frees are
// classified and reported here).
func cacheFreeGo(c *Cache, p unsafe.Pointer) {
	k := c.c
	addr := uintptr(p)
	h := k.hdrAt(addr)
	if h == nil || h.cache != k.id || !k.objStart(h.base, addr) {
		c.badFree(addr)
		return
	}
	pid := percpu.Pin()
	if k.flushing.Load() == 0 && uint(pid) < uint(len(k.pcpu)) {
		pc := &k.pcpu[pid]
		raceAcquire(unsafe.Pointer(pc))
		if pc.main != nil && int32(h.node) == k.memNode[pid].Load() {
			if pc.n > 0 && pc.objs[pc.n-1] == addr {
				raceReleaseMerge(unsafe.Pointer(pc))
				percpu.Unpin()
				k.a.invalidFree(c.name, addr, "double free")
				return
			}
			if pc.n < len(pc.objs) {
				pc.objs[pc.n] = addr
				pc.n++
				statAdd(&pc.stat[FreeFastpath], 1)
				raceReleaseMerge(unsafe.Pointer(pc))
				percpu.Unpin()
				return
			}
		}
		raceReleaseMerge(unsafe.Pointer(pc))
	}
	percpu.Unpin()
	k.freeSlow(c.name, int(h.node), h.base, addr)
}

// badFree reports why addr cannot be freed to c.
func (c *Cache) badFree(addr uintptr) {
	a := c.c.a
	s, why := a.slabOf(addr)
	switch {
	case s == nil:
	case s.cache != c.c.id:
		why = "object belongs to another cache"
		if o := a.cacheOf(s.cache); o != nil {
			why = "object belongs to cache " + o.name
		}
	default:
		why = "not the start of an object"
	}
	a.invalidFree(c.name, addr, why)
}

// freeSlow: the P's main sheaf is full (or absent), or the object is
// remote. Kernel: __pcs_replace_full_main() / __slab_free().
func (k *cache) freeSlow(name string, node int, base, addr uintptr) {
	a := k.a
	for {
		pid, gen := a.pinUnflushed()
		if uint(pid) >= uint(len(k.pcpu)) {
			percpu.Unpin()
			k.freeToSlab(name, node, base, addr)
			return
		}
		pc := &k.pcpu[pid]
		raceAcquire(unsafe.Pointer(pc))
		if node != int(a.memNode[pid].Load()) {
			statAdd(&pc.stat[FreeRemote], 1)
			r := pc.remote
			if r != nil && r.node == node && r.n < len(r.objs) {
				if r.n > 0 && r.objs[r.n-1] == addr {
					raceReleaseMerge(unsafe.Pointer(pc))
					percpu.Unpin()
					a.invalidFree(name, addr, "double free")
					return
				}
				r.objs[r.n] = addr
				r.n++
				raceReleaseMerge(unsafe.Pointer(pc))
				percpu.Unpin()
				return
			}
			pc.remote = nil
			raceReleaseMerge(unsafe.Pointer(pc))
			percpu.Unpin()
			k.replaceRemote(r, node, addr, gen)
			return
		}
		statAdd(&pc.stat[FreeSlowpath], 1)
		if sp := pc.spare; pc.n >= len(pc.objs) && sp != nil && sp.n < len(sp.objs) {
			pc.spare = pc.takeMain()
			pc.setMain(sp)
		}
		if pc.n < len(pc.objs) {
			// The spare, or emptied by another goroutine on this P
			// meanwhile.
			pc.objs[pc.n] = addr
			pc.n++
			raceReleaseMerge(unsafe.Pointer(pc))
			percpu.Unpin()
			return
		}
		full := pc.takeMain()
		my := int(a.memNode[pid].Load())
		raceReleaseMerge(unsafe.Pointer(pc))
		percpu.Unpin()

		empty := k.getEmptySheaf(my, full)
		empty.objs[0] = addr
		empty.n = 1
		// If a flush ran meanwhile, installSheaf puts addr back in its
		// slab instead.
		k.installSheaf(empty, gen, false)
		return
	}
}

// replaceRemote: the P's remote sheaf r (taken off the P; may be nil) is
// full or collects another node's objects. A full one goes whole to the
// barn of its node, where that node's Ps take it as a full sheaf, so the
// objects go home without being touched; otherwise (or if the barn is
// full) its objects go back to their slabs. addr starts the P's next
// remote sheaf. Kernel: none; SLUB sends remote frees to their slab one
// by one (__slab_free), which costs a list_lock and two cache misses per
// object.
func (k *cache) replaceRemote(r *sheaf, node int, addr uintptr, gen uint64) {
	a := k.a
	if r != nil && r.n == len(r.objs) && len(r.objs) == k.sheafCap {
		if cn := k.nodes[r.node].Load(); cn != nil && cn.barnPutFull(r) {
			a.statUnpinned(k, BarnPut)
			r = nil
		}
	}
	if r != nil {
		k.flushSheaf(r)
	} else {
		r = k.getEmptySheaf(node, nil)
	}
	r.node = node
	r.objs[0] = addr
	r.n = 1
	pid := percpu.Pin()
	if a.flushing.Load() != 0 || a.flushGen.Load() != gen || uint(pid) >= uint(len(k.pcpu)) {
		percpu.Unpin()
		k.flushSheaf(r)
		return
	}
	pc := &k.pcpu[pid]
	raceAcquire(unsafe.Pointer(pc))
	if pc.remote == nil {
		pc.remote, r = r, nil
	}
	raceReleaseMerge(unsafe.Pointer(pc))
	percpu.Unpin()
	if r != nil {
		k.flushSheaf(r)
	}
}

// getEmptySheaf trades a full sheaf (may be nil) for an empty one: the full
// one goes to the barn, or back to the slabs when the barn is full.
func (k *cache) getEmptySheaf(node int, full *sheaf) *sheaf {
	a := k.a
	cn := k.nodes[node].Load()
	if full != nil {
		if cn != nil && len(full.objs) == k.sheafCap && cn.barnPutFull(full) {
			a.statUnpinned(k, BarnPut)
			full = nil
		} else {
			a.statUnpinned(k, BarnPutFail)
			k.flushSheaf(full)
			if len(full.objs) == k.sheafCap {
				return full
			}
		}
	}
	if cn != nil {
		if e := cn.barnGetEmpty(); e != nil {
			return e
		}
	}
	a.statUnpinned(k, SheafAlloc)
	return k.newSheaf(k.sheafCap)
}

// freeToSlab puts one object back on its slab under the node's list_lock
// and frees the slab if it became empty and the node has enough partial
// slabs. Kernel: __slab_free() / discard_slab().
func (k *cache) freeToSlab(name string, node int, base, addr uintptr) {
	cn := k.nodes[node].Load()
	cn.listLock.Lock()
	s := k.a.headHdr(base)
	if s.cache != k.id || s.base != base || s.inuse == 0 || s.freelist == uint32(addr-base)+1 {
		cn.listLock.Unlock()
		k.a.invalidFree(name, addr, "double free")
		return
	}
	discard := k.putObjLocked(cn, s, addr)
	cn.listLock.Unlock()
	if discard != nil {
		k.discardSlab(discard)
	}
}

// putObjLocked returns addr to s; it returns s if s is now empty and must
// be discarded. Called with the node's list_lock.
func (k *cache) putObjLocked(cn *cacheNode, s *slabHdr, addr uintptr) *slabHdr {
	k.pushFree(s, addr)
	s.inuse--
	cn.nrFree++
	if !s.onList {
		cn.partial.push(k.a, s)
	}
	if s.inuse == 0 && cn.partial.n > k.minPartial {
		cn.partial.remove(k.a, s)
		cn.nrSlabs--
		cn.nrFree -= int64(k.objects)
		return s
	}
	return nil
}

// flushSheaf returns every object of sh to its slab. Kernel:
// sheaf_flush_unused().
func (k *cache) flushSheaf(sh *sheaf) {
	if sh.n == 0 {
		return
	}
	var discard []*slabHdr
	var cn *cacheNode
	for i := 0; i < sh.n; i++ {
		addr := sh.objs[i]
		s, _ := k.a.slabOf(addr)
		if n := k.nodes[s.node].Load(); n != cn {
			if cn != nil {
				cn.listLock.Unlock()
			}
			cn = n
			cn.listLock.Lock()
		}
		if d := k.putObjLocked(cn, s, addr); d != nil {
			discard = append(discard, d)
		}
	}
	cn.listLock.Unlock()
	sh.n = 0
	for _, s := range discard {
		k.discardSlab(s)
	}
	k.a.statUnpinned(k, SheafFlush)
}

// flushPcpuLocked empties every P's sheaves. The caller holds the P's
// (stopPcpu). Kernel: flush_all_cpus_locked() for sheaves.
func (k *cache) flushPcpuLocked() {
	for p := range k.pcpu {
		pc := &k.pcpu[p]
		raceAcquire(unsafe.Pointer(pc))
		if m := pc.takeMain(); m != nil {
			k.flushSheaf(m)
			pc.setMain(m) // empty, stays the P's
		}
		if pc.spare != nil {
			k.flushSheaf(pc.spare)
		}
		if pc.remote != nil {
			k.flushSheaf(pc.remote)
		}
		raceReleaseMerge(unsafe.Pointer(pc))
	}
}

// flushBarns empties every node's barn of full sheaves.
// Kernel: barn_shrink().
func (k *cache) flushBarns() {
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		cn.barnLock.Lock()
		full := cn.full
		cn.full = nil
		cn.empty = nil
		cn.barnLock.Unlock()
		for _, sh := range full {
			k.flushSheaf(sh)
		}
	}
}

// shrinkNodes frees every empty slab. Kernel: __kmem_cache_do_shrink().
func (k *cache) shrinkNodes() {
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		var discard []*slabHdr
		cn.listLock.Lock()
		for s := cn.partial.first(k.a); s != nil; {
			next := k.a.nextOf(s)
			if s.inuse == 0 {
				cn.partial.remove(k.a, s)
				cn.nrSlabs--
				cn.nrFree -= int64(k.objects)
				discard = append(discard, s)
			}
			s = next
		}
		cn.listLock.Unlock()
		for _, s := range discard {
			k.discardSlab(s)
		}
	}
}

// Barn operations (struct node_barn).

// sheafStack is one of a barn's two lists of sheaves (barn lock).
type sheafStack []*sheaf

func (st *sheafStack) pop() *sheaf {
	n := len(*st)
	if n == 0 {
		return nil
	}
	sh := (*st)[n-1]
	*st = (*st)[:n-1]
	return sh
}

// push adds sh unless the list already holds limit sheaves.
func (st *sheafStack) push(sh *sheaf, limit int) bool {
	if len(*st) >= limit {
		return false
	}
	*st = append(*st, sh)
	return true
}

// barnGetFull takes a full sheaf, leaving empty (if given and of the
// cache's size) in the barn in exchange. Kernel: barn_replace_empty_sheaf().
func (cn *cacheNode) barnGetFull(k *cache, empty *sheaf) *sheaf {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	full := cn.full.pop()
	if full != nil && empty != nil && len(empty.objs) == k.sheafCap {
		cn.empty.push(empty, maxBarnEmpty)
	}
	return full
}

func (cn *cacheNode) barnPutFull(sh *sheaf) bool {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	return cn.full.push(sh, maxBarnFull)
}

func (cn *cacheNode) barnGetEmpty() *sheaf {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	return cn.empty.pop()
}

func (cn *cacheNode) barnPutEmpty(sh *sheaf) bool {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	return cn.empty.push(sh, maxBarnEmpty)
}
