// Errors: the sentinels every refusal wraps (each unwrapping to the kernel's
// errno) and the report of a refused free.

package slab

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors. Each unwraps to the errno the kernel would return, so errors.Is
// works with both the sentinel and the errno. A returned error reads
// context first and the sentinel's text once, last:
//
//	slab: cache "session": object size 0 not in 1..32768: invalid argument
var (
	// ErrInvalid: a bad argument (size, alignment, flags, name, node,
	// gfp), or a pointer that is not what the call needs.
	ErrInvalid error = &sentinel{"invalid argument", syscall.EINVAL}
	// ErrNoMemory: the page allocator could not supply a slab.
	ErrNoMemory error = &sentinel{"out of memory", syscall.ENOMEM}
	// ErrBusy: objects are still allocated (Cache.Destroy of the last
	// name, Allocator.Close).
	ErrBusy error = &sentinel{"objects still allocated", syscall.EBUSY}
	// ErrDestroyed: the cache handle was destroyed.
	ErrDestroyed error = &sentinel{"cache destroyed", syscall.EINVAL}
	// ErrClosed: the Allocator was closed.
	ErrClosed error = &sentinel{"allocator closed", syscall.EINVAL}
	// ErrExists: a cache of that name exists.
	ErrExists error = &sentinel{"cache exists", syscall.EEXIST}
	// ErrPermanent: the kmalloc caches cannot be destroyed.
	ErrPermanent error = &sentinel{"kmalloc caches are permanent", syscall.EPERM}
)

// sentinel is an error kind: its text says what went wrong and it unwraps
// to the errno.
type sentinel struct {
	text  string
	errno syscall.Errno
}

func (e *sentinel) Error() string { return e.text }
func (e *sentinel) Unwrap() error { return e.errno }

// causeError is an error of a kind caused by another error (mem's, for a
// slab that could not be allocated): it reads "context: cause" and is
// both the kind and the cause for errors.Is.
type causeError struct {
	context string
	kind    error
	cause   error
}

func (e *causeError) Error() string   { return e.context + ": " + e.cause.Error() }
func (e *causeError) Unwrap() []error { return []error{e.kind, e.cause} }

// InvalidFree describes a free the allocator refused.
type InvalidFree struct {
	Cache string  // the handle the free was addressed to ("" for kfree)
	Addr  uintptr // the pointer
	Fault string  // what is wrong with it
}

// Error describes the refused free: the pointer, the handle (or kfree)
// and the fault.
func (f *InvalidFree) Error() string {
	if f.Cache == "" {
		return fmt.Sprintf("slab: invalid kfree of %#x: %s", f.Addr, f.Fault)
	}
	return fmt.Sprintf("slab: invalid free of %#x to cache %q: %s", f.Addr, f.Cache, f.Fault)
}

// invalidFree reports a refused free; nothing has changed.
func (a *Allocator) invalidFree(cache string, addr uintptr, fault string) {
	f := &InvalidFree{Cache: cache, Addr: addr, Fault: fault}
	if a.onInvalid != nil {
		a.onInvalid(f)
		return
	}
	panic(f.Error())
}

var errNoNode = errors.New("node has no structure")
