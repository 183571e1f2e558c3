//go:build linux

// The device layer's side of hotplug: device_hotplug_lock for callers
// that hold it across an operation (the sysfs views' stores), the
// operations with it held, and the registration of block devices (what
// is told, under device_hotplug_lock, of each block's creation and
// removal: the sysfs memoryN directories).

package mem

import (
	"context"
	"syscall"
)

// LockDeviceHotplug takes device_hotplug_lock, which every hotplug
// operation runs under; the *Locked operations expect it held. Kernel:
// lock_device_hotplug().
func (s *System) LockDeviceHotplug() { s.deviceHotplug.Lock() }

// TryLockDeviceHotplug takes device_hotplug_lock if it is free. A sysfs
// store that holds an active reference must take it this way and, when
// it fails, drop the reference and restart, because hot-remove holds it
// while it waits for the block's active references (the kernel's
// lock_device_hotplug_sysfs + restart_syscall).
func (s *System) TryLockDeviceHotplug() bool { return s.deviceHotplug.TryLock() }

// UnlockDeviceHotplug releases device_hotplug_lock.
func (s *System) UnlockDeviceHotplug() { s.deviceHotplug.Unlock() }

// OnlineLocked is Online with device_hotplug_lock held by the caller.
func (s *System) OnlineLocked(ctx context.Context, block int, kind OnlineKind) error {
	if !kind.valid() {
		return errnoErr(syscall.EINVAL, "online block %d: bad kind %v", block, kind)
	}
	if err := ctx.Err(); err != nil {
		return errnoErr(syscall.EINTR, "online block %d: %v", block, err)
	}
	b, err := s.getBlock(block)
	if err != nil {
		return err
	}
	return s.onlineLocked(b, kind)
}

// OfflineLocked is Offline with device_hotplug_lock held by the caller.
func (s *System) OfflineLocked(ctx context.Context, block int) error {
	b, err := s.getBlock(block)
	if err != nil {
		return err
	}
	return s.offlineLocked(ctx, b)
}

// BlockDevices is told of blocks as they are created and removed, with
// device_hotplug_lock held: BlockAdded after a block is added (before it
// is auto-onlined), BlockRemoving before a removed block goes (it may
// wait, e.g. for a sysfs directory's active references; it must not take
// device_hotplug_lock or start a hotplug operation). Kernel:
// create_memory_block_devices / remove_memory_block_devices.
type BlockDevices interface {
	BlockAdded(block int)
	BlockRemoving(block int)
}

// SetBlockDevices registers d (nil: none) and tells it of every present
// block; it returns a function that unregisters it.
func (s *System) SetBlockDevices(d BlockDevices) (unset func()) {
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	s.devices = d
	if d != nil {
		for i := range s.blocks {
			if s.blocks[i].Load() != nil {
				d.BlockAdded(i)
			}
		}
	}
	return func() {
		s.deviceHotplug.Lock()
		if s.devices == d {
			s.devices = nil
		}
		s.deviceHotplug.Unlock()
	}
}

// blocksAdded tells the block devices of new blocks. Caller holds
// device_hotplug_lock.
func (s *System) blocksAdded(ids []int) {
	if s.devices != nil {
		for _, id := range ids {
			s.devices.BlockAdded(id)
		}
	}
}
