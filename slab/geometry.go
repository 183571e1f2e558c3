// Slab geometry: alignment, slot size, slab order and sheaf capacity.

package slab

import (
	"fmt"

	"github.com/hotslab/hotslab/mem"
)

const (
	// MaxSize is the largest object a cache can hold (KMALLOC_MAX_CACHE_SIZE
	// is 8 KiB; dedicated caches may hold up to an order-3 slab).
	MaxSize = 8 << mem.PageShift
	// MinAlign is the smallest object alignment (a pointer).
	MinAlign = 8
	// maxSlabOrder is the largest slab order: beyond the kernel's 3 when
	// that is what keeps the leftover small (calculateOrder).
	maxSlabOrder = 5
	// costlyOrder bounds the orders taken only to hold minObjects slots
	// (PAGE_ALLOC_COSTLY_ORDER).
	costlyOrder = 3
	// minObjects is how many slots a slab should hold, so that a sheaf
	// refills from few slabs.
	minObjects   = 16
	cacheLine    = 64
	maxBarnFull  = 10
	maxBarnEmpty = 10
)

func alignUp(x, a int) int { return (x + a - 1) &^ (a - 1) }

// calculateAlignment mirrors the kernel's calculate_alignment().
func calculateAlignment(flags Flags, align, size int) int {
	if flags&HWCacheAlign != 0 {
		ralign := cacheLine
		for size <= ralign/2 && ralign > MinAlign {
			ralign /= 2
		}
		align = max(align, ralign)
	}
	return max(align, MinAlign)
}

// calculateOrder picks the slab order for slots of size bytes: the
// kernel's calculate_order() and calc_slab_order(), tighter. The smallest
// order that holds minObjects slots (for sheaves to refill from few
// slabs) up to the kernel's costly order 3, or else order 3, is the
// least order considered; from there the smallest order up to
// maxSlabOrder whose leftover is at most 1/64 of the slab is taken, the
// fraction relaxed step by step (1/32, 1/16, … 1/2) when none is — where
// the kernel starts at 1/16 and stops at order 3, so that a 3000-byte
// cache wastes 8.4 % of its slabs (1.6 % here, at order 5) and a 640-byte
// one 2.3 % (0.4 % here, at order 3).
func calculateOrder(size int) (order, objects int) {
	minOrder := 0
	for minOrder < costlyOrder && (mem.PageSize<<minOrder)/size < minObjects {
		minOrder++
	}
	for fraction := 64; fraction > 1; fraction /= 2 {
		for order = minOrder; order <= maxSlabOrder; order++ {
			slab := mem.PageSize << order
			if objects = slab / size; objects > 0 && slab%size <= slab/fraction {
				return order, objects
			}
		}
	}
	// At 1/2 any order holding one slot qualifies; MaxSize fits order 3.
	panic(fmt.Sprintf("slab: no slab order for %d-byte slots", size))
}

// sheafCapacity picks the number of objects a per-P sheaf holds.
func sheafCapacity(size int) int {
	switch {
	case size <= 64:
		return 128
	case size <= 256:
		return 64
	case size <= 1024:
		return 32
	default:
		return 16
	}
}
