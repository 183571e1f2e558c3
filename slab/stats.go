package slab

// Stat is a per-cache event counter, named like the kernel's SLUB_STATS
// (the file names under /sys/kernel/slab/<cache>/).
type Stat int

// The counters. Those of the fast paths are kept per P, so counting
// costs one plain increment in the pinned section (atomic under -race);
// the slow paths' events are per-cache atomic adds (statUnpinned).
// Stats sums both.
const (
	AllocFastpath     Stat = iota // alloc_fastpath: served from the P's sheaf
	AllocSlowpath                 // alloc_slowpath
	FreeFastpath                  // free_fastpath: pushed to the P's sheaf
	FreeSlowpath                  // free_slowpath
	FreeRemote                    // free_remote: object of another node sent home
	AllocSlab                     // alloc_slab: new slab from the page allocator
	FreeSlab                      // free_slab: slab pages returned
	SheafRefill                   // sheaf_refill: sheaf filled from slabs
	SheafFlush                    // sheaf_flush: sheaf emptied to slabs
	BarnGet                       // barn_get: full sheaf taken from the barn
	BarnGetFail                   // barn_get_fail
	BarnPut                       // barn_put: full sheaf given to the barn
	BarnPutFail                   // barn_put_fail
	SheafAlloc                    // sheaf_alloc: new sheaf allocated
	SheafFree                     // sheaf_free
	SheafPrefill                  // sheaf_prefill: prefilled sheaf handed out
	SheafReturn                   // sheaf_return
	AllocNodeMismatch             // alloc_node_mismatch: node-specific alloc off the fast path
	AllocBulk                     // alloc_bulk: objects allocated in bulk
	FreeBulk                      // free_bulk: objects freed in bulk
	OrderFallback                 // order_fallback: slab of the fallback order
	NumStats
)

var statNames = [NumStats]string{
	"alloc_fastpath", "alloc_slowpath", "free_fastpath", "free_slowpath",
	"free_remote", "alloc_slab", "free_slab", "sheaf_refill", "sheaf_flush",
	"barn_get", "barn_get_fail", "barn_put", "barn_put_fail", "sheaf_alloc",
	"sheaf_free", "sheaf_prefill", "sheaf_return", "alloc_node_mismatch",
	"alloc_bulk", "free_bulk", "order_fallback",
}

// String returns the kernel's name of the counter.
func (s Stat) String() string {
	if s < 0 || s >= NumStats {
		return "stat?"
	}
	return statNames[s]
}

// NodeStats are the totals of one NUMA node of a cache.
type NodeStats struct {
	Node    int
	Slabs   int64 // slabs on the node
	Objects int64 // object slots in those slabs
	Partial int64 // slabs on the partial list
	Free    int64 // free slots in the node's slabs
}

// CacheStats is a snapshot of a cache.
type CacheStats struct {
	Name        string
	ObjectSize  int // requested size
	Size        int // slot size
	Align       int
	ObjsPerSlab int
	Order       int
	Aliases     int // names beyond the first sharing the cache
	SheafCap    int
	Counters    [NumStats]uint64
	Nodes       []NodeStats
}

// Slabs returns the total number of slabs.
func (s *CacheStats) Slabs() (n int64) {
	for _, x := range s.Nodes {
		n += x.Slabs
	}
	return n
}

// Objects returns the total number of object slots.
func (s *CacheStats) Objects() (n int64) {
	for _, x := range s.Nodes {
		n += x.Objects
	}
	return n
}

// ActiveObjects returns the slots not free in a slab (objects in use,
// including those cached in per-P sheaves and barns).
func (s *CacheStats) ActiveObjects() (n int64) {
	for _, x := range s.Nodes {
		n += x.Objects - x.Free
	}
	return n
}

// PartialSlabs returns the total number of partial slabs.
func (s *CacheStats) PartialSlabs() (n int64) {
	for _, x := range s.Nodes {
		n += x.Partial
	}
	return n
}
