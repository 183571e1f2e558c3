//go:build linux

// The address space: reserving the range and the vmemmap, and mapping,
// protecting, discarding and unmapping a block's memory and Pages.

package mem

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reserve opens the backing, maps the PROT_NONE range (block-aligned) and
// the read-only vmemmap.
func (s *System) reserve(cfg Config) error {
	switch cfg.Backing {
	case BackingAnon:
	case BackingMemfd:
		fd, err := unix.MemfdCreate("hotslab-mem", unix.MFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("mem: memfd_create: %w", err)
		}
		s.fd = fd
	case BackingFile:
		if cfg.BackingPath == "" {
			return errnoErr(syscall.EINVAL, "BackingFile needs BackingPath")
		}
		fd, err := unix.Open(cfg.BackingPath, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("mem: open %s: %w", cfg.BackingPath, err)
		}
		s.fd = fd
	default:
		return errnoErr(syscall.EINVAL, "bad backing %d", cfg.Backing)
	}
	if s.fd >= 0 {
		if err := unix.Ftruncate(s.fd, int64(s.size)); err != nil {
			unix.Close(s.fd)
			return fmt.Errorf("mem: ftruncate backing to %d: %w", s.size, err)
		}
	}
	// Reserve one block more than needed and trim, so that Base is
	// block-aligned: then every buddy chunk is aligned to its size in
	// virtual addresses too, as in the kernel's direct map.
	bs := uintptr(s.blockSize)
	p, err := unix.MmapPtr(-1, 0, nil, s.size+bs, unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return fmt.Errorf("mem: reserve %d bytes: %w", s.size, err)
	}
	head := (bs - uintptr(p)%bs) % bs
	if head > 0 {
		_ = unix.MunmapPtr(p, head)
	}
	if tail := bs - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, head+s.size), tail)
	}
	s.basePtr = unsafe.Add(p, head)
	s.base = uintptr(s.basePtr)
	// The Pages: off the Go heap, so the collector never sees them.
	s.vmemmapSize = s.size >> PageShift * pageSize
	// Read-only, not PROT_NONE: a lock-free PageMap.PageAt of any address
	// in the range may read its Page, and an absent block's Pages read as
	// zeros (the shared zero page) instead of faulting.
	vm, err := unix.MmapPtr(-1, 0, nil, s.vmemmapSize, unix.PROT_READ,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		_ = unix.MunmapPtr(s.basePtr, s.size)
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return fmt.Errorf("mem: reserve %d bytes of struct pages: %w", s.vmemmapSize, err)
	}
	s.vmemmap = vm
	return nil
}

// memmap returns block i's part of the vmemmap.
func (s *System) memmap(i int) []byte {
	n := uintptr(s.pagesPerBlock) * pageSize
	return unsafe.Slice((*byte)(unsafe.Add(s.vmemmap, uintptr(i)*n)), n)
}

// ptr turns an address inside the range into a pointer.
func (s *System) ptr(addr uintptr) unsafe.Pointer { return unsafe.Add(s.basePtr, addr-s.base) }

// bytes returns the n bytes at addr inside the range.
func (s *System) bytes(addr uintptr, n uintptr) []byte {
	return unsafe.Slice((*byte)(s.ptr(addr)), n)
}

// mapBlock maps block i PROT_NONE from the backing (hot-add).
func (s *System) mapBlock(i int) error {
	addr := s.ptr(s.base + uintptr(i)<<s.blockShift)
	var err error
	if s.fd >= 0 {
		_, err = unix.MmapPtr(s.fd, int64(i)<<s.blockShift, addr, uintptr(s.blockSize),
			unix.PROT_NONE, unix.MAP_SHARED|unix.MAP_FIXED)
	} else {
		_, err = unix.MmapPtr(-1, 0, addr, uintptr(s.blockSize), unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE)
	}
	if err == nil {
		// The block's Pages (a whole number of OS pages: blocks are at
		// least 1 MiB): read-write while the block is present.
		err = unix.Mprotect(s.memmap(i), unix.PROT_READ|unix.PROT_WRITE)
	}
	return err
}

// unmapBlock discards block i's memory and Pages, makes its Pages
// read-only again and puts the block back into the PROT_NONE reservation
// (hot-remove).
func (s *System) unmapBlock(i int) error {
	s.discard(i)
	// The Pages go back to zeros and read-only: a lock-free reader that
	// raced with the remove reads zeros, never faults.
	if err := unix.Madvise(s.memmap(i), unix.MADV_DONTNEED); err != nil {
		s.log.Warn("mem: madvise(MADV_DONTNEED) of struct pages failed", "block", i, "err", err)
	}
	if err := unix.Mprotect(s.memmap(i), unix.PROT_READ); err != nil {
		s.log.Warn("mem: mprotect(PROT_READ) of struct pages failed", "block", i, "err", err)
	}
	_, err := unix.MmapPtr(-1, 0, s.ptr(s.base+uintptr(i)<<s.blockShift), uintptr(s.blockSize),
		unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE)
	return err
}

// protect makes block i accessible (online) or not (offline).
func (s *System) protect(i int, rw bool) error {
	prot := unix.PROT_NONE
	if rw {
		prot = unix.PROT_READ | unix.PROT_WRITE
	}
	return unix.Mprotect(s.bytes(s.base+uintptr(i)<<s.blockShift, uintptr(s.blockSize)), prot)
}

// discard gives block i's memory back to the OS. It reports whether the
// block's memory now reads as zeros.
func (s *System) discard(i int) bool {
	ok := true
	b := s.bytes(s.base+uintptr(i)<<s.blockShift, uintptr(s.blockSize))
	if err := unix.Madvise(b, unix.MADV_DONTNEED); err != nil {
		s.log.Warn("mem: madvise(MADV_DONTNEED) failed", "block", i, "err", err)
		ok = false
	}
	if s.fd >= 0 {
		err := unix.Fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE,
			int64(i)<<s.blockShift, s.blockSize)
		if err != nil {
			s.log.Warn("mem: punching a hole in the backing failed", "block", i, "err", err)
			ok = false
		}
	}
	return ok
}

// release gives the memory of the n bytes at addr (a free buddy chunk)
// back to the OS, keeping the mapping: later accesses fault in zeroed
// memory (the page reporter). Anonymous memory: MADV_DONTNEED. A
// memfd or file is mapped MAP_SHARED, where MADV_DONTNEED would only
// drop the page-table entries and leave the pages in the file: a punched
// hole (fallocate PUNCH_HOLE|KEEP_SIZE) frees them and unmaps them from
// every mapping. The error wraps the errno.
func (s *System) release(addr, n uintptr) error {
	if s.fd >= 0 {
		for {
			err := unix.Fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE,
				int64(addr-s.base), int64(n))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("mem: punching a hole of %d bytes at %#x in the backing: %w", n, addr-s.base, err)
			}
			return nil
		}
	}
	if err := unix.Madvise(s.bytes(addr, n), unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("mem: madvise(MADV_DONTNEED) of %d bytes at %#x: %w", n, addr, err)
	}
	return nil
}
