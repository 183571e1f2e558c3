// Magazines: goroutine-owned caches of objects whose Alloc and Free inline
// into the caller (Bonwick's per-thread magazine layer).

package slab

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Magazine is a goroutine-owned front of a cache for hot loops: a private
// stack of free objects whose Alloc and Free are small enough to be
// inlined into the caller — no call, no P lookup, no pinning, no lock, no
// atomic read-modify-write. When it runs empty it refills half of itself
// from the cache (the P's sheaves, then the slabs) in one bulk allocation;
// when it runs full it flushes half back in one bulk free. Free validates
// as Cache.Free does — its cheap checks inline (the page's cache id, the
// object start for power-of-two sizes in a slab's first page, the top of
// the magazine, the slab's freelist head), the rest out of line — and
// refuses and reports what Cache.Free would.
//
// Alloc is always inlined. Free is inlined only at a call site that
// profile-guided optimisation finds hot (go build -pgo=profile.pprof, or
// a default.pgo beside the main package): Go's inliner charges 57 of its
// budget of 80 for a function that calls anything, so even the smallest
// Free with an out-of-line slow path (cost 87) is too big for it without
// a profile, while PGO raises the budget at hot call sites. Without PGO
// Free is one register-ABI call. bench/interleave.sh -pgo measures both.
//
// Objects in a magazine count as allocated (as in a prefilled Sheaf): a
// Shrink or an offline does not reach them, Destroy refuses while a
// magazine is open, and they go back with Flush or Close. A Magazine is
// not safe for concurrent use; it may move between goroutines with the
// usual synchronisation, and flushes, hotplug and GOMAXPROCS changes need
// nothing from it. Kernel: none (SLUB's per-CPU sheaves are per CPU);
// illumos kmem's and jemalloc's thread caches are the model.
type Magazine struct {
	n    int
	objs []uintptr
	// Copies of the cache's fields for the free path's checks
	// (Allocator.Close empties size, as it empties the cache's).
	base    uintptr
	size    uintptr
	vmemmap unsafe.Pointer
	id      uint32
	// mask is the cache's sizeMask for a power-of-two size, else all
	// ones (only the slab's first object passes the fast check).
	mask uintptr
	k    *kmemCache
	c    *Cache
	err  error // why the last Alloc returned nil
	// zero (an InitOnAlloc cache): objects must be zeroed as they are
	// handed out, which the inlined Alloc cannot do, so the magazine
	// keeps its count in held and n stays 0: every Alloc takes allocSlow,
	// which zeroes.
	zero bool
	held int
}

// count returns the field that counts the magazine's objects.
func (m *Magazine) count() *int {
	if m.zero {
		return &m.held
	}
	return &m.n
}

// NewMagazine returns an empty magazine of the cache holding up to size
// objects (2 … 65536; 0: the cache's sheaf capacity).
func (c *Cache) NewMagazine(size int) (*Magazine, error) {
	k := c.c
	if size == 0 {
		size = k.sheafCap
	}
	if k.debug != 0 {
		return nil, fmt.Errorf("slab: cache %q: a debug cache has no magazines (its objects are checked at every free): %w", c.name, ErrInvalid)
	}
	if size < 2 || size > 1<<16 {
		return nil, fmt.Errorf("slab: cache %q: magazine size %d not in 2..65536: %w", c.name, size, ErrInvalid)
	}
	m := &Magazine{objs: make([]uintptr, size), base: k.memBase, size: k.freeSize, vmemmap: k.vmemmap, id: k.id,
		mask: ^uintptr(0), k: k, c: c, zero: k.initAlloc}
	if k.sizeMask != 0 {
		m.mask = k.sizeMask
	}
	if err := c.acquire(); err != nil {
		return nil, err
	}
	if !k.a.registerOpen(m) {
		c.open.Add(-1)
		return nil, fmt.Errorf("slab: cache %q: %w", c.name, ErrClosed)
	}
	return m, nil
}

// Alloc returns an object: popped from the magazine, or, when it is
// empty, after a refill of half of it from the cache. It returns nil
// when the cache cannot supply one (Err says why). Small enough to be
// inlined into the caller.
func (m *Magazine) Alloc() unsafe.Pointer {
	if m.n == 0 {
		return m.allocSlow()
	}
	m.n--
	return *(*unsafe.Pointer)(unsafe.Pointer(&m.objs[m.n]))
}

// Err returns why the last Alloc returned nil (nil if it did not).
func (m *Magazine) Err() error { return m.err }

// allocSlow refills half the magazine (at least one object) and pops.
//
//go:noinline
func (m *Magazine) allocSlow() unsafe.Pointer {
	m.err = nil
	if m.objs == nil {
		m.err = fmt.Errorf("slab: cache %q: magazine closed: %w", m.c.name, ErrInvalid)
		return nil
	}
	if m.zero && m.held > 0 {
		m.held--
		addr := m.objs[m.held]
		m.k.zeroObj(addr) // InitOnAlloc: zeroed as it is handed out
		return ptr(addr)
	}
	want := max(len(m.objs)/2, 1)
	dst := unsafe.Slice((*unsafe.Pointer)(unsafe.Pointer(unsafe.SliceData(m.objs))), want)
	if err := m.c.AllocBulk(dst); err != nil {
		// Not even half: one object, as Cache.Alloc would.
		p, err := m.c.Alloc()
		m.err = err
		return p
	}
	*m.count() = want - 1 // AllocBulk zeroed them (InitOnAlloc)
	return *(*unsafe.Pointer)(unsafe.Pointer(&m.objs[want-1]))
}

// Free puts an object of the cache into the magazine; when it is full,
// half the magazine goes back to the cache first. nil is ignored; what
// Cache.Free refuses is refused and reported, nothing changed. The
// common case (a power-of-two size, the object in its slab's first page,
// room) is a handful of loads and compares with no P lookup and no pin.
func (m *Magazine) Free(p unsafe.Pointer) {
	addr, n := uintptr(p), m.n
	if off := addr - m.base; off < m.size && uint(n) < uint(len(m.objs)) {
		h := (*slabHdr)(unsafe.Add(m.vmemmap, off>>pageShift*pageStructSize+pageOwnerOff)) // hdrAt
		if soff := addr - h.base; h.cache == m.id && soff&m.mask == 0 && soff < pageSize &&
			(n == 0 || m.objs[n-1] != addr) && atomic.LoadUint32(&h.freelist) != uint32(soff)+1 {
			m.objs[n] = addr
			m.n = n + 1
			return
		}
	}
	m.freeSlow(p)
}

// freeSlow: the magazine is full, or the object is not one the inline
// checks can accept (not a power-of-two size, beyond the slab's first
// page), or it is refused.
//
//go:noinline
func (m *Magazine) freeSlow(p unsafe.Pointer) {
	if p == nil {
		return
	}
	addr := uintptr(p)
	if m.objs == nil {
		m.k.a.invalidFree(m.c.name, addr, "magazine closed")
		return
	}
	cnt := m.count()
	var top uintptr
	if *cnt > 0 {
		top = m.objs[*cnt-1]
	}
	if !m.c.keepable(addr, top, "magazine", m.k.initFree) {
		return
	}
	if *cnt == len(m.objs) {
		m.flush(len(m.objs) / 2)
	}
	m.objs[*cnt] = addr
	*cnt++
}

// keepable validates a free of addr into a private stack — a Magazine's
// or a prefilled Sheaf's, whose top object is top (0: empty) — as
// Cache.Free would, and prepares the object to be kept there: uncharged
// (its stack hands objects out uncharged) and, if zero, zeroed. A refused
// free is reported and false returned, nothing changed.
func (c *Cache) keepable(addr, top uintptr, what string, zero bool) bool {
	k := c.c
	h := k.hdrAt(addr)
	if h == nil || h.cache != k.id || !k.objStart(h, addr) || c.dead.Load() {
		c.badFree(addr)
		return false
	}
	if addr == top {
		k.a.invalidFree(c.name, addr, "double free (object on top of the "+what+")")
		return false
	}
	if k.freelistHead(h.base, addr) {
		k.a.invalidFree(c.name, addr, "double free (object heads its slab's freelist)")
		return false
	}
	k.uncharge(h, addr)
	if zero {
		k.zeroObj(addr)
	}
	return true
}

// flush gives the n objects at the bottom of the magazine back to the
// cache (the oldest: the top ones are the likeliest to be in the CPU's
// cache) and moves the rest down.
func (m *Magazine) flush(n int) {
	objs := unsafe.Slice((*unsafe.Pointer)(unsafe.Pointer(unsafe.SliceData(m.objs))), n)
	m.c.FreeBulk(objs)
	cnt := m.count()
	*cnt = copy(m.objs, m.objs[n:*cnt])
}

// Len returns the number of objects in the magazine.
func (m *Magazine) Len() int { return m.n + m.held }

// Cap returns how many objects the magazine holds at most.
func (m *Magazine) Cap() int { return len(m.objs) }

// Flush gives every object in the magazine back to the cache.
func (m *Magazine) Flush() {
	if n := *m.count(); n > 0 {
		m.flush(n)
	}
}

// Close flushes the magazine and detaches it from the cache; it must not
// be used afterwards (Alloc returns nil, Free refuses). Allocator.Close
// empties every open magazine (their objects are freed with every other
// page), so a magazine then refuses too.
func (m *Magazine) Close() {
	if m.objs == nil {
		return
	}
	if m.k.a.closed.Load() { // Close detached it
		return
	}
	m.Flush()
	m.k.a.unregisterOpen(m)
	m.n, m.held, m.objs, m.size = 0, 0, nil, 0
	m.c.open.Add(-1)
}

// detach empties a magazine on Allocator.Close: Close frees its objects
// with every other page.
func (m *Magazine) detach() { m.n, m.held, m.objs, m.size = 0, 0, nil, 0 }
