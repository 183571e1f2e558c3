// Memory and node hotplug callbacks, and the node each P caches objects of.

package slab

import (
	"fmt"
	"syscall"

	"github.com/hotslab/hotslab/mem"
)

// computeProcNodes fills procNode from slabNodes: each P caches objects of
// its own node if that has memory, else of the nearest that has. Called
// with slab_mutex held and, after New, by resetProcNodes.
func (a *Allocator) computeProcNodes() {
	nn := len(a.slabNodes)
	for p := range a.procNode {
		home := a.sys.LocalNode(p)
		best := home
		for d := 0; d < nn; d++ {
			if n := (home + d) % nn; a.slabNodes[n] && a.sys.NodeHasMemory(n) {
				best = n
				break
			}
		}
		a.procNode[p].Store(int32(best))
	}
}

// nodeCallback is the slab allocator's node notifier.
// Kernel: slab_node_callback() (6.17+).
func (a *Allocator) nodeCallback(ev mem.NodeEvent, nid int) error {
	switch ev {
	case mem.NodeAddingFirstMemory:
		// Give every cache a structure for the node before it has
		// memory, and put the node in slab_nodes, all under slab_mutex,
		// so a cache created concurrently gets one too.
		a.slabMutex.Lock()
		defer a.slabMutex.Unlock()
		if f := a.failNodeInit.Load(); f != 0 && int(f-1) == nid {
			return fmt.Errorf("slab: node %d structures: %w", nid, syscall.ENOMEM)
		}
		for _, k := range a.caches {
			k.initNode(nid)
		}
		a.slabNodes[nid] = true
	case mem.NodeAddedFirstMemory:
		a.slabMutex.Lock()
		a.resetProcNodes()
		a.slabMutex.Unlock()
	case mem.NodeRemovingLastMemory:
		// Kernel: slab_mem_going_offline_callback(): flush every CPU
		// and shrink every cache.
		a.slabMutex.Lock()
		a.flushAndShrinkAll()
		a.slabMutex.Unlock()
	case mem.NodeRemovedLastMemory:
		a.slabMutex.Lock()
		a.resetProcNodes()
		a.slabMutex.Unlock()
	}
	return nil
}

// memoryCallback empties sheaves and frees empty slabs when a block goes
// offline, so the block's free slab pages leave it; slab pages holding
// live objects stay and make the offline fail with EBUSY.
func (a *Allocator) memoryCallback(ev mem.MemoryEvent, arg mem.MemoryNotify) error {
	if ev == mem.MemGoingOffline {
		// A block with no page in use holds no slab, so no sheaf or
		// empty slab of any cache is in it: nothing to give back (the
		// kernel shrinks every cache on every offline; a block onlined
		// movable, which slab never uses, is the common case here).
		if bi, err := a.sys.Block(arg.Block); err == nil && bi.UsedPages == 0 {
			return nil
		}
		a.slabMutex.Lock()
		a.flushAndShrinkAll()
		a.slabMutex.Unlock()
	}
	return nil
}

// resetProcNodes recomputes the node of every P's objects. Every P's
// sheaves are emptied in the same flush, so a P's main and spare sheaves
// never hold objects of a node that is no longer the P's. Called with
// slab_mutex held.
func (a *Allocator) resetProcNodes() {
	a.beginFlush()
	for _, k := range a.caches {
		k.flushPcpuLocked()
	}
	a.computeProcNodes()
	// The emptied main and spare sheaves stay on their Ps: they now
	// collect objects of the P's new node.
	for _, k := range a.caches {
		for p := range k.pcpu {
			pc := &k.pcpu[p]
			node := int(a.procNode[p].Load())
			pc.node = node
			for _, sh := range []*objSheaf{pc.main, pc.spare} {
				if sh != nil {
					sh.node = node
				}
			}
		}
	}
	a.endFlush()
}
