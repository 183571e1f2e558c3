package memcg

import "syscall"

// Errors. Each wraps the errno the kernel's cgroup files return, so
// errors.Is works with either.
var (
	// ErrNoMemory: a charge failed at memory.max after reclaim (ENOMEM).
	ErrNoMemory = sentinel{"out of memory", syscall.ENOMEM}
	// ErrBusy: a group with children cannot be removed (EBUSY).
	ErrBusy = sentinel{"group has children", syscall.EBUSY}
	// ErrExist: a group of that name exists (EEXIST).
	ErrExist = sentinel{"group exists", syscall.EEXIST}
	// ErrNotExist: no such group (ENOENT).
	ErrNotExist = sentinel{"no such group", syscall.ENOENT}
	// ErrInvalid: a bad name, limit or argument (EINVAL).
	ErrInvalid = sentinel{"invalid argument", syscall.EINVAL}
	// ErrPermission: a write to a read-only file (EACCES).
	ErrPermission = sentinel{"read-only file", syscall.EACCES}
	// ErrRemoved: the group was removed (ENODEV, as a write to a removed
	// cgroup's file).
	ErrRemoved = sentinel{"group removed", syscall.ENODEV}
)

// sentinel is an error with its own text that also matches its errno.
type sentinel struct {
	text  string
	errno syscall.Errno
}

func (e sentinel) Error() string { return e.text }
func (e sentinel) Unwrap() error { return e.errno }
