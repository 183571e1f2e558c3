// Memory notifier error injection: the kernel's
// /sys/kernel/debug/notifier-error-inject/memory/actions/<event>/error.

package sysfs

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/hotslab/hotslab/mem"
)

// maxErrno is the kernel's MAX_ERRNO.
const maxErrno = 4095

// AddNotifierErrorInject serves
// sys/kernel/debug/notifier-error-inject/memory/actions/{MEM_GOING_ONLINE,
// MEM_GOING_OFFLINE}/error (mode 0600, "%d\n"): writing a negative errno
// makes that memory notifier event fail with it, so the online or offline
// fails with that errno and the block's state is unchanged; 0 turns it
// off. Values are clamped to [-4095, 0] as the kernel's
// debugfs_create_errno does; a non-number is EINVAL. It registers a
// memory notifier of the highest priority on sys; stop unregisters it.
func AddNotifierErrorInject(t *Tree, sys *mem.System) (stop func(), err error) {
	actions, err := mkdirAll(t.Root(), "sys/kernel/debug/notifier-error-inject/memory/actions")
	if err != nil {
		return nil, err
	}
	var errs [2]atomic.Int32
	events := []struct {
		name string
		ev   mem.MemoryEvent
	}{{"MEM_GOING_ONLINE", mem.MemGoingOnline}, {"MEM_GOING_OFFLINE", mem.MemGoingOffline}}
	for i, e := range events {
		d, err := actions.Mkdir(e.name, 0o755)
		if err != nil {
			return nil, err
		}
		v := &errs[i]
		if _, err := d.AddFile("error", 0o600, Attr{
			Show: func() (string, error) { return fmt.Sprintf("%d\n", v.Load()), nil },
			Store: func(_ context.Context, data string) error {
				n, err := ParseInt(data)
				if err != nil {
					return fmt.Errorf("error: %w", err)
				}
				v.Store(int32(min(max(n, -maxErrno), 0)))
				return nil
			},
		}, ActiveClass("debug/notifier-error-inject")); err != nil {
			return nil, err
		}
	}
	// Priority 0, the kernel's default for the injector: it runs after
	// slab's callback (priority 1), whose work the failure then cancels.
	return sys.RegisterMemoryNotifier("notifier-error-inject", 0, func(ev mem.MemoryEvent, _ mem.MemoryNotify) error {
		for i, e := range events {
			if e.ev == ev {
				if n := errs[i].Load(); n != 0 {
					return syscall.Errno(-n)
				}
			}
		}
		return nil
	}), nil
}
