// Slab geometry: the order calculateOrder picks for every slot size.

package slab

import (
	"testing"

	"github.com/hotslab/hotslab/mem"
)

// For every slot size a cache can have, the order is the smallest, from
// the least order that holds minObjects slots (up to order 3), whose
// leftover is within the tightest fraction of 1/64 … 1/2 any order up to
// maxSlabOrder reaches — the kernel's calculate_order() loop, started at
// 1/64 and allowed to order 5.
func TestCalculateOrder(t *testing.T) {
	for size := MinAlign; size <= MaxSize; size += MinAlign {
		order, objects := calculateOrder(size)
		slab := mem.PageSize << order
		if order < 0 || order > maxSlabOrder || objects != slab/size || objects < 1 {
			t.Fatalf("size %d: order %d, %d objects", size, order, objects)
		}
		minOrder := 0
		for minOrder < costlyOrder && (mem.PageSize<<minOrder)/size < minObjects {
			minOrder++
		}
		if order < minOrder {
			t.Fatalf("size %d: order %d below the %d needed for %d objects", size, order, minOrder, minObjects)
		}
		// No order in range does better at a tighter fraction.
		for fraction := 64; fraction > 1; fraction /= 2 {
			best := -1
			for o := minOrder; o <= maxSlabOrder; o++ {
				s := mem.PageSize << o
				if s/size > 0 && s%size <= s/fraction {
					best = o
					break
				}
			}
			if best >= 0 {
				if order != best {
					t.Fatalf("size %d: order %d, but order %d leaves at most 1/%d", size, order, best, fraction)
				}
				break
			}
		}
	}
	for _, c := range []struct{ size, order, objects int }{
		{64, 0, 64}, {200, 2, 81}, {640, 3, 51}, {3000, 5, 43}, {8192, 3, 4}, {MaxSize, 3, 1},
	} {
		if o, n := calculateOrder(c.size); o != c.order || n != c.objects {
			t.Errorf("size %d: order %d with %d objects, want order %d with %d", c.size, o, n, c.order, c.objects)
		}
	}
}
