// Sheaves (arrays of free objects) and the per-node barn of full and empty
// sheaves.

package slab

import "unsafe"

// objSheaf is an array of free objects (the kernel's struct slab_sheaf):
// a P's main, spare or remote sheaf, a barn's full or empty one, or the
// inside of a prefilled Sheaf.
type objSheaf struct {
	sheafFields
	// Sheaves of different Ps never share a cache line.
	_ [cacheLine - unsafe.Sizeof(sheafFields{})%cacheLine]byte
}

type sheafFields struct {
	n    int
	objs []uintptr // len == capacity
	// node is the node of every object in the sheaf, or mixedNode when
	// they may be of several (a refill that fell back to another node,
	// a prefilled sheaf freed into). Only sheaves of one node go to a
	// barn (theirs) or onto a P (whose node it is).
	node int
}

// mixedNode is the node of a sheaf whose objects may be of several nodes.
const mixedNode = -1

// newSheaf returns an empty sheaf. Its array is preceded by a zero word
// (objs[-1] in memory), so the assembly free compares the top of any
// sheaf with the pointer freed without checking for an empty one first.
func (k *kmemCache) newSheaf(capacity, node int) *objSheaf {
	sh := &objSheaf{}
	sh.objs, sh.node = make([]uintptr, capacity+1)[1:], node
	return sh
}

// disposeSheaf puts a sheaf that left a P (or a returned prefilled sheaf)
// somewhere: a full one of one node to its node's barn if that has room,
// else its objects back to their slabs and the empty sheaf to the barn.
func (k *kmemCache) disposeSheaf(sh *objSheaf) {
	a := k.a
	var cn *cacheNode
	if sh.node >= 0 {
		cn = k.nodes[sh.node].Load()
	}
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

// getEmptySheaf trades a full sheaf (may be nil) for an empty one: the full
// one goes to the barn, or back to the slabs when the barn is full.
func (k *kmemCache) getEmptySheaf(node int, full *objSheaf) *objSheaf {
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
				full.node = node
				return full
			}
		}
	}
	if cn != nil {
		if e := cn.barnGetEmpty(); e != nil {
			e.node = node
			return e
		}
	}
	a.statUnpinned(k, SheafAlloc)
	return k.newSheaf(k.sheafCap, node)
}

// sheafStack is one of a barn's two lists of sheaves (barn lock).
type sheafStack []*objSheaf

func (st *sheafStack) pop() *objSheaf {
	n := len(*st)
	if n == 0 {
		return nil
	}
	sh := (*st)[n-1]
	*st = (*st)[:n-1]
	return sh
}

// push adds sh unless the list already holds limit sheaves.
func (st *sheafStack) push(sh *objSheaf, limit int) bool {
	if len(*st) >= limit {
		return false
	}
	*st = append(*st, sh)
	return true
}

// barnGetFull takes a full sheaf, leaving empty (if given and of the
// cache's size) in the barn in exchange. Kernel: barn_replace_empty_sheaf().
func (cn *cacheNode) barnGetFull(k *kmemCache, empty *objSheaf) *objSheaf {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	full := cn.full.pop()
	if full != nil && empty != nil {
		if len(empty.objs) != k.sheafCap || !cn.empty.push(empty, maxBarnEmpty) {
			k.a.statUnpinned(k, SheafFree)
		}
	}
	return full
}

func (cn *cacheNode) barnPutFull(sh *objSheaf) bool {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	return cn.full.push(sh, maxBarnFull)
}

func (cn *cacheNode) barnGetEmpty() *objSheaf {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	return cn.empty.pop()
}

func (cn *cacheNode) barnPutEmpty(sh *objSheaf) bool {
	cn.barnLock.Lock()
	defer cn.barnLock.Unlock()
	return cn.empty.push(sh, maxBarnEmpty)
}
