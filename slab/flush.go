// The flush protocol (one flusher owns every P's sheaves after a grace
// period) and what flushers do: empty sheaves and barns, free empty slabs.

package slab

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

// beginFlush takes exclusive ownership of every P's sheaves of the caches
// ks, or of every cache when ks is empty (the caller then holds
// slab_mutex, so no cache appears meanwhile): it sets their flushing
// words and waits a grace period, after which no P is inside a pinned
// section that saw them clear. Kernel: the effect of
// flush_all_cpus_locked()'s per-CPU work.
func (a *Allocator) beginFlush(ks ...*kmemCache) {
	a.flushMu.Lock()
	if len(ks) == 0 {
		ks = a.caches
	}
	for _, k := range ks {
		k.flushing.Store(1)
		k.setFastProcs(0) // the assembly's flushing test (see fastProcs)
		k.flushGen.Add(1)
	}
	percpu.Synchronize()
}

// endFlush ends the flush begun by beginFlush with the same caches.
func (a *Allocator) endFlush(ks ...*kmemCache) {
	if len(ks) == 0 {
		ks = a.caches
	}
	for _, k := range ks {
		k.flushing.Store(0)
		k.setFastProcs(k.procsForAsm())
	}
	a.flushMu.Unlock()
}

// waitFlush blocks until a flush in progress is over.
func (a *Allocator) waitFlush() {
	a.flushMu.Lock()
	a.flushMu.Unlock() //nolint:staticcheck // a barrier, not a critical section
}

// flushAndShrinkAll flushes every P's sheaves and every barn of every
// cache and frees every empty slab. Called with slab_mutex held.
func (a *Allocator) flushAndShrinkAll() {
	a.beginFlush()
	for _, k := range a.caches {
		k.flushPcpuLocked()
	}
	a.endFlush()
	for _, k := range a.caches {
		k.flushBarns()
		k.shrinkNodes()
	}
}

// Shrink flushes every P's sheaves and the barns and gives every empty
// slab back to the page allocator, whose background reporter gives the
// memory back to the OS after its delay (Allocator.Shrink does both at
// once, for every cache). It does not take mem_hotplug_lock. Kernel:
// kmem_cache_shrink().
func (c *Cache) Shrink() { c.c.shrink() }

func (k *kmemCache) shrink() {
	k.a.beginFlush(k)
	k.flushPcpuLocked()
	k.a.endFlush(k)
	k.flushBarns()
	k.shrinkNodes()
}

// Shrink shrinks every cache (Cache.Shrink) and then has the page
// allocator give its free memory back to the OS at once
// (mem.System.ReportFreePages), returning how many bytes went back. Cancelling ctx stops the report between
// batches (an error wrapping EINTR); what went back stays back.
func (a *Allocator) Shrink(ctx context.Context) (int64, error) {
	a.slabMutex.Lock()
	if a.closed.Load() {
		a.slabMutex.Unlock()
		return 0, fmt.Errorf("slab: shrink: %w", ErrClosed)
	}
	a.flushAndShrinkAll()
	a.slabMutex.Unlock()
	n, err := a.sys.ReportFreePages(ctx)
	if err != nil {
		return n, fmt.Errorf("slab: shrink: %w", err)
	}
	return n, nil
}

// flushSheaf returns every object of sh to its slab. Kernel:
// sheaf_flush_unused().
func (k *kmemCache) flushSheaf(sh *objSheaf) {
	if sh.n == 0 {
		return
	}
	var discard []*slabHdr
	var cn *cacheNode
	for i := 0; i < sh.n; i++ {
		addr := sh.objs[i]
		s, _ := k.a.slabOf(addr)
		if s == nil || s.cache != k.id {
			// Only an undetected double free (the slab went away
			// meanwhile) can put such a pointer in a sheaf: drop it.
			k.a.log.Error("slab: flushing a sheaf: not an object of the cache (an undetected double free?)", "cache", k.name, "addr", addr)
			continue
		}
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
	if cn != nil {
		cn.listLock.Unlock()
	}
	sh.n = 0
	for _, s := range discard {
		k.discardSlab(s)
	}
	k.a.statUnpinned(k, SheafFlush)
}

// flushPcpuLocked empties every P's sheaves. The caller holds the P's
// (stopPcpu). Kernel: flush_all_cpus_locked() for sheaves.
func (k *kmemCache) flushPcpuLocked() {
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
func (k *kmemCache) flushBarns() {
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		k.flushBarn(cn)
		cn.barnLock.Lock()
		dropped := len(cn.empty)
		cn.empty = nil
		cn.barnLock.Unlock()
		for range dropped {
			k.a.statUnpinned(k, SheafFree)
		}
	}
}

// flushBarn returns the objects of cn's full sheaves to their slabs,
// keeping the emptied sheaves in the barn as far as it has room.
func (k *kmemCache) flushBarn(cn *cacheNode) {
	cn.barnLock.Lock()
	full := cn.full
	cn.full = nil
	cn.barnLock.Unlock()
	for _, sh := range full {
		k.flushSheaf(sh)
		if !cn.barnPutEmpty(sh) {
			k.a.statUnpinned(k, SheafFree)
		}
	}
}

// shrinkNodes frees every empty slab. Kernel: __kmem_cache_do_shrink().
func (k *kmemCache) shrinkNodes() {
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
				cn.nrObjs -= int64(k.objectsOf(s))
				cn.nrFree -= int64(k.objectsOf(s))
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
