// Errors: the sentinels every refusal wraps (each wrapping the kernel's errno)
// and the report of a refused free.

package slab

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors. Each wraps the errno the kernel would return, so errors.Is works
// with both the sentinel and the errno.
var (
	// ErrInvalid: a bad argument (size, alignment, flags, name, node).
	ErrInvalid = fmt.Errorf("slab: invalid argument: %w", syscall.EINVAL)
	// ErrNoMemory: the page allocator could not supply a slab.
	ErrNoMemory = fmt.Errorf("slab: out of memory: %w", syscall.ENOMEM)
	// ErrBusy: the cache still has objects and cannot be destroyed.
	ErrBusy = fmt.Errorf("slab: cache has objects: %w", syscall.EBUSY)
	// ErrDestroyed: the cache handle was destroyed.
	ErrDestroyed = fmt.Errorf("slab: cache destroyed: %w", syscall.EINVAL)
	// ErrExists: a cache of that name exists.
	ErrExists = fmt.Errorf("slab: cache exists: %w", syscall.EEXIST)
)

// InvalidFree describes a free the allocator refused.
type InvalidFree struct {
	Cache string  // cache the free was addressed to ("" for kfree)
	Addr  uintptr // the pointer
	Fault string  // what is wrong with it
}

func (f *InvalidFree) Error() string {
	return fmt.Sprintf("slab: invalid free of %#x to cache %q: %s", f.Addr, f.Cache, f.Fault)
}

func (a *Allocator) invalidFree(cache string, addr uintptr, fault string) {
	f := &InvalidFree{Cache: cache, Addr: addr, Fault: fault}
	if a.onInvalid != nil {
		a.onInvalid(f)
		return
	}
	panic(f.Error())
}

var errNoNode = errors.New("slab: node has no structure")
