// Memory and node hotplug callbacks, and the node each P caches objects of.

package slab

import (
	"fmt"
	"syscall"

	"github.com/hotslab/hotslab/mem"
)

// computeMemNodes fills memNode from slabNodes. Called with slab_mutex
// held and, after start, while flushing.
func (a *Allocator) computeMemNodes() {
	nn := len(a.slabNodes)
	for p := range a.memNode {
		home := a.sys.LocalNode(p)
		best := home
		for d := 0; d < nn; d++ {
			if n := (home + d) % nn; a.slabNodes[n] && a.sys.NodeHasMemory(n) {
				best = n
				break
			}
		}
		a.memNode[p].Store(int32(best))
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
		a.stopPcpu()
		a.computeMemNodes()
		a.startPcpu()
		a.slabMutex.Unlock()
	case mem.NodeRemovingLastMemory:
		// Kernel: slab_mem_going_offline_callback(): flush every CPU
		// and shrink every cache.
		a.slabMutex.Lock()
		a.flushAndShrinkAll()
		a.slabMutex.Unlock()
	case mem.NodeRemovedLastMemory:
		a.slabMutex.Lock()
		a.stopPcpu()
		a.computeMemNodes()
		a.startPcpu()
		a.slabMutex.Unlock()
	}
	return nil
}

// memoryCallback empties sheaves and frees empty slabs when a block goes
// offline, so the block's free slab pages leave it; slab pages holding
// live objects stay and make the offline fail with EBUSY.
func (a *Allocator) memoryCallback(ev mem.MemoryEvent, arg mem.MemoryNotify) error {
	if ev == mem.MemGoingOffline {
		a.slabMutex.Lock()
		a.flushAndShrinkAll()
		a.slabMutex.Unlock()
	}
	return nil
}

// localNode returns the node whose objects P pid caches (for a P beyond
// the per-P arrays, that of a P sharing its slot modulo their length).
func (a *Allocator) localNode(pid int) int {
	return int(a.memNode[uint(pid)%uint(len(a.memNode))].Load())
}
