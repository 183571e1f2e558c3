// Sheaves (arrays of free objects) and the per-node barn of full and empty
// sheaves.

package slab

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
