//go:build amd64 && !race && !purego && go1.26 && !go1.27

package slab

import (
	"sync/atomic"
	"unsafe"

	"github.com/hotslab/hotslab/internal/percpu"
)

// The per-P fast paths in assembly (fast_amd64.s): one call, no pin.

// procID returns the id of the running goroutine's P, read from the
// runtime's g → m → p (the caller must not rely on it staying so).
func procID() int

// cacheAlloc is Cache.Alloc: the P's main sheaf popped in assembly, else
// a tail jump to cacheAllocGo. Kernel: alloc_from_pcs().
//
//go:noescape
func cacheAlloc(c *Cache) (p unsafe.Pointer, err error)

// cacheFree is Cache.Free: p validated and pushed onto the P's main sheaf
// (or, for another node's object, onto the P's remote sheaf) in assembly,
// else a tail jump to cacheFreeGo. Kernel: free_to_pcs().
//
//go:noescape
func cacheFree(c *Cache, p unsafe.Pointer)

// groupReuse is GroupCache.reuse: the P's main sheaf's top object popped
// in assembly if its vector entry is *tid (read pinned), else nil (the Go
// paths then).
//
//go:noescape
func groupReuse(c *Cache, tid *atomic.Uint32) unsafe.Pointer

// asmBuild: this build has the assembly fast paths.
const asmBuild = true

// fastPath is whether the assembly fast paths are used: their runtime
// offsets must agree with runtime.procPin, else every cache's fastProcs
// is 0 and they jump straight to the pinned Go paths.
var fastPath = procIDAgrees()

func procIDAgrees() bool {
	pid := percpu.Pin()
	got := procID()
	percpu.Unpin()
	return got == pid
}
