package slab

import (
	"fmt"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// KmallocMaxCacheSize is the largest kmalloc served by a slab cache;
// larger requests go straight to the page allocator.
const KmallocMaxCacheSize = 8192

type kmallocCaches struct {
	bySize [len(kmallocSizes)]*Cache
	// cg are the accounted classes, kmalloc-cg-N (the kernel's
	// KMALLOC_CGROUP caches), for KmallocGroup.
	cg [len(kmallocSizes)]*Cache
	// index maps (size-1)/8 to the class of size: one load per
	// lookup, as the kernel's size_index table for the small sizes.
	index [KmallocMaxCacheSize / 8]uint8
}

// kmallocSizes are the kmalloc size classes: 8-byte steps to 64, 16-byte
// steps to 128, then four classes per doubling (jemalloc's ladder, denser
// below 64), so rounding a request up to its class wastes less than a
// fifth of the class from 33 B to 8 KiB (and at most 7 bytes below). The
// kernel has 13 classes (powers of two, 96 and 192): a 640-byte request
// there takes 1024 bytes.
var kmallocSizes = [...]int{
	8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128,
	160, 192, 224, 256, 320, 384, 448, 512,
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
}

// kmallocName names a class as the kernel does: kmalloc-N, kmalloc-Nk for
// whole KiB.
func kmallocName(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("kmalloc-%dk", size/1024)
	}
	return fmt.Sprintf("kmalloc-%d", size)
}

func (a *Allocator) createKmallocCaches() error {
	for i, sz := range kmallocSizes {
		c, err := a.NewCache(kmallocName(sz), sz, nil)
		if err != nil {
			return err
		}
		c.kmalloc = true
		a.kmalloc.bySize[i] = c
	}
	for i, sz := range kmallocSizes {
		c, err := a.NewCache(strings.Replace(kmallocName(sz), "kmalloc-", "kmalloc-cg-", 1), sz, &CacheOptions{Flags: Account})
		if err != nil {
			return err
		}
		c.kmalloc = true
		a.kmalloc.cg[i] = c
	}
	class := 0
	for i := range a.kmalloc.index {
		for kmallocSizes[class] < (i+1)*8 {
			class++
		}
		a.kmalloc.index[i] = uint8(class)
	}
	return nil
}

// kmallocCache returns the kmalloc cache for size (1..8 KiB).
// Kernel: kmalloc_slab().
func (a *Allocator) kmallocCache(size int) *Cache {
	return a.kmalloc.bySize[a.kmalloc.index[(size-1)>>3]]
}

// kmallocCGCache returns the accounted kmalloc cache for size.
func (a *Allocator) kmallocCGCache(size int) *Cache {
	return a.kmalloc.cg[a.kmalloc.index[(size-1)>>3]]
}

func largeOrder(size int) int {
	pages := (size + mem.PageSize - 1) >> mem.PageShift
	return bits.Len(uint(pages - 1))
}

// Kmalloc allocates size bytes. Sizes up to 8 KiB come from the kmalloc
// caches; larger ones from the page allocator. Kernel: kmalloc().
func (a *Allocator) Kmalloc(size int, gfp GFP) (unsafe.Pointer, error) {
	return a.KmallocNode(size, mem.NumaNoNode, gfp)
}

// KmallocNode is Kmalloc on a node, with Cache.AllocNode's node and gfp
// rules. Kernel: kmalloc_node().
func (a *Allocator) KmallocNode(size, node int, gfp GFP) (unsafe.Pointer, error) {
	if size <= 0 || size > mem.PageSize<<mem.MaxOrder {
		return nil, fmt.Errorf("slab: kmalloc size %d not in 1..%d: %w", size, mem.PageSize<<mem.MaxOrder, ErrInvalid)
	}
	if size <= KmallocMaxCacheSize {
		c := a.kmallocCache(size)
		if node == mem.NumaNoNode && gfp == 0 {
			return c.Alloc()
		}
		return c.AllocNode(node, gfp)
	}
	if node < mem.NumaNoNode || node >= a.sys.NumNodes() || gfp&^slabGFP != 0 {
		return nil, fmt.Errorf("slab: kmalloc node %d, gfp %#x: %w", node, uint32(gfp), ErrInvalid)
	}
	if a.closed.Load() {
		return nil, fmt.Errorf("slab: kmalloc %d bytes: %w", size, ErrClosed)
	}
	order := largeOrder(size)
	addr, err := a.sys.AllocPages(node, order, gfp)
	if err != nil {
		return nil, &causeError{fmt.Sprintf("slab: kmalloc %d bytes", size), ErrNoMemory, err}
	}
	*hdr(a.sys.PageOf(addr)) = slabHdr{cache: largeID, flags: hdrLarge, base: addr}
	return ptr(addr), nil
}

// Kfree frees memory from Kmalloc; nil is ignored. Invalid pointers are
// refused and reported. Kernel: kfree().
func (a *Allocator) Kfree(p unsafe.Pointer) {
	if p == nil {
		return
	}
	addr := uintptr(p)
	if a.closed.Load() {
		a.invalidFree("", addr, "allocator closed")
		return
	}
	pg := a.sys.PageOf(addr)
	if pg == nil {
		a.invalidFree("", addr, "pointer is not in hotslab memory")
		return
	}
	h := hdr(pg)
	switch {
	case h.cache == 0:
		a.invalidFree("", addr, "not a slab page or kmalloc allocation")
	case h.flags&hdrLarge != 0:
		if addr != h.base {
			a.invalidFree("", addr, "not the start of a large kmalloc allocation")
			return
		}
		// FreePages refuses a concurrent second free of the same
		// allocation and clears the header.
		a.unchargeLarge(pg, h)
		if err := a.sys.FreePages(addr, pg.Order()); err != nil {
			a.invalidFree("", addr, err.Error())
		}
	default:
		k := a.cacheOf(h.cache)
		var kh *Cache
		if k != nil {
			kh = k.kmallocHandle()
		}
		if kh == nil {
			name := "?"
			if k != nil {
				name = k.name
			}
			a.invalidFree("", addr, "object of non-kmalloc cache "+name)
			return
		}
		kh.Free(p)
	}
}

// kmallocHandle returns the kmalloc handle of a kmalloc cache, else nil.
func (k *kmemCache) kmallocHandle() *Cache {
	for _, c := range k.a.kmalloc.bySize {
		if c != nil && c.c == k {
			return c
		}
	}
	for _, c := range k.a.kmalloc.cg {
		if c != nil && c.c == k {
			return c
		}
	}
	return nil
}

// Ksize returns the usable size of a Kmalloc or cache object, 0 for an
// invalid pointer. Kernel: ksize().
func (a *Allocator) Ksize(p unsafe.Pointer) int {
	addr := uintptr(p)
	pg := a.sys.PageOf(addr)
	if pg == nil {
		return 0
	}
	h := hdr(pg)
	switch {
	case h.cache == 0:
		return 0
	case h.flags&hdrLarge != 0:
		if addr != h.base {
			return 0
		}
		return mem.PageSize << max(pg.Order(), 0)
	}
	k := a.cacheOf(h.cache)
	if k == nil || !k.objStart(h, addr) {
		return 0
	}
	return int(k.objectSize.Load())
}

// Krealloc resizes a Kmalloc allocation, moving it when it does not fit;
// the contents up to the smaller size are kept, and the old allocation is
// freed once moved. p nil is Kmalloc. A p that is not a Kmalloc
// allocation (an object of a non-kmalloc cache) is refused with an error
// wrapping ErrInvalid and nothing changes; a p that is no allocation at
// all is also reported as an invalid free. Kernel: krealloc().
func (a *Allocator) Krealloc(p unsafe.Pointer, size int, gfp GFP) (unsafe.Pointer, error) {
	if p == nil {
		return a.Kmalloc(size, gfp)
	}
	old := a.Ksize(p)
	if old == 0 {
		a.invalidFree("", uintptr(p), "krealloc of a pointer that is not an allocation")
		return nil, fmt.Errorf("slab: krealloc of %p: not an allocation: %w", p, ErrInvalid)
	}
	if h := hdr(a.sys.PageOf(uintptr(p))); h.flags&hdrLarge == 0 {
		if k := a.cacheOf(h.cache); k == nil || k.kmallocHandle() == nil {
			return nil, fmt.Errorf("slab: krealloc of %p: an object of a non-kmalloc cache: %w", p, ErrInvalid)
		}
	}
	if size > 0 && size <= old {
		return p, nil
	}
	var q unsafe.Pointer
	var err error
	if o := a.objCgroupOf(uintptr(p)); o != nil && size > 0 {
		q, err = a.KmallocGroup(o.Group(), size, gfp) // the same group
	} else {
		q, err = a.Kmalloc(size, gfp)
	}
	if err != nil {
		return nil, err
	}
	copy(unsafe.Slice((*byte)(q), size), unsafe.Slice((*byte)(p), old))
	a.Kfree(p)
	return q, nil
}

// KmallocCaches returns the kmalloc cache handles, smallest first.
func (a *Allocator) KmallocCaches() []*Cache {
	return append([]*Cache(nil), a.kmalloc.bySize[:]...)
}
