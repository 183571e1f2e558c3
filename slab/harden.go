// Hardening: zeroing on allocation and on free (init_on_alloc,
// init_on_free) and the shuffled object order of new slabs
// (SLAB_FREELIST_RANDOM). Freelist pointer obfuscation is page.go's.

package slab

import (
	"math/rand/v2"
	"unsafe"
)

// randomPerm returns a random permutation of 0..n-1 (the kernel's
// per-cache random_seq).
func randomPerm(n int) []uint32 {
	p := make([]uint32, n)
	for i := range p {
		p[i] = uint32(i)
	}
	rand.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// zeroObj zeroes the object at addr over the cache's object size.
func (k *kmemCache) zeroObj(addr uintptr) {
	clear(unsafe.Slice((*byte)(ptr(addr)), k.objectSize.Load()))
}

// taken prepares an object a plain allocation took: a stale charge
// dropped (accounted caches), the object zeroed (InitOnAlloc).
func (k *kmemCache) taken(addr uintptr) {
	if k.acct {
		k.unchargeStale(addr)
	}
	if k.initAlloc {
		k.zeroObj(addr)
	}
}

// freed prepares an object a free is about to keep (InitOnFree).
func (k *kmemCache) freed(addr uintptr) {
	if k.initFree {
		k.zeroObj(addr)
	}
}
