//go:build !amd64 || race || purego || !go1.26 || go1.27

package slab

import (
	"sync/atomic"
	"unsafe"
)

// Without the assembly fast paths (other architectures or Go releases, and
// race builds, whose detector must see the per-P accesses) the pinned Go
// paths run.

const (
	asmBuild = false
	fastPath = false
)

func procID() int { return -1 }

func cacheAlloc(c *Cache) (unsafe.Pointer, error) { return cacheAllocGo(c) }

func cacheFree(c *Cache, p unsafe.Pointer) { cacheFreeGo(c, p) }

func groupReuse(c *Cache, tid *atomic.Uint32) unsafe.Pointer { return groupReuseGo(c, tid) }
