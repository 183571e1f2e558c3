// Slab geometry: alignment, slot size, slab order and sheaf capacity.

package slab

import "github.com/hotslab/hotslab/mem"

const (
	// MaxSize is the largest object a cache can hold (KMALLOC_MAX_CACHE_SIZE
	// is 8 KiB; dedicated caches may hold up to an order-3 slab).
	MaxSize = 8 << mem.PageShift
	// MinAlign is the smallest object alignment (a pointer).
	MinAlign     = 8
	maxSlabOrder = 3
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

// calculateOrder picks the smallest slab order whose leftover is at most a
// sixteenth of the slab and which holds enough objects for sheaves to be
// refilled from few slabs. Kernel: calculate_order().
func calculateOrder(size int) (order, objects int) {
	const minObjects = 16
	for order = 0; order <= maxSlabOrder; order++ {
		slabSize := mem.PageSize << order
		objects = slabSize / size
		if objects == 0 {
			continue
		}
		waste := slabSize - objects*size
		if waste*16 <= slabSize && (objects >= minObjects || order == maxSlabOrder) {
			return order, objects
		}
	}
	for order = 0; order <= maxSlabOrder; order++ {
		if objects = (mem.PageSize << order) / size; objects > 0 {
			return order, objects
		}
	}
	return maxSlabOrder, 1
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
