//go:build linux

// Hot-add and hot-remove of memory blocks: AddMemory, Probe, RemoveMemory
// and the auto-online of added blocks.

package mem

import "syscall"

// addLocked creates n blocks on node, at index at (-1: the lowest free
// run), offline and isolated. Caller holds device_hotplug_lock; addLocked
// takes mem_hotplug_lock (write) itself. Kernel: add_memory_resource()
// (mem_hotplug_begin, arch_add_memory, create_memory_block_devices).
func (s *System) addLocked(node, n, at int) ([]int, error) {
	if s.closed {
		return nil, errnoErr(syscall.EINVAL, "system closed")
	}
	s.memHotplug.Lock()
	defer s.memHotplug.Unlock()
	if at < 0 {
		run := 0
		for i := 0; i < s.maxBlocks && run < n; i++ {
			if s.blocks[i].Load() == nil {
				run++
			} else {
				run = 0
			}
			if run == n {
				at = i - n + 1
			}
		}
		if at < 0 {
			return nil, errnoErr(syscall.ENOMEM, "no room for %d blocks in the address range", n)
		}
	}
	ids := make([]int, 0, n)
	for i := at; i < at+n; i++ {
		if err := s.mapBlock(i); err != nil {
			for _, id := range ids {
				s.blocks[id].Store(nil)
				_ = s.unmapBlock(id)
			}
			return nil, errnoErr(syscall.ENOMEM, "map block %d: %v", i, err)
		}
		b := s.newBlock(i, node)
		b.dev.Init(blockDevClass)
		b.isolated.Store(true)
		// A file may hold old data; anonymous memory and the memfd
		// (holes punched on remove) read as zeros.
		b.zero = s.backing != BackingFile
		s.blocks[i].Store(b)
		ids = append(ids, i)
	}
	s.log.Debug("mem: added memory", "node", node, "blocks", ids)
	return ids, nil
}

// autoOnlineLocked onlines freshly added blocks per the policy, after
// mem_hotplug_lock was dropped; failures leave the block offline and are
// only logged, as in the kernel. Caller holds device_hotplug_lock.
func (s *System) autoOnlineLocked(ids []int) {
	p := s.AutoOnline()
	kind, ok := p.onlineKind()
	if !ok {
		return
	}
	for _, id := range ids {
		if err := s.onlineLocked(s.blocks[id].Load(), kind); err != nil {
			s.log.Warn("mem: auto-online failed", "block", id, "policy", p.String(), "err", err)
		}
	}
}

// AddMemory hot-adds size bytes (a positive multiple of BlockSize) to
// node, at the lowest free run of blocks, and onlines them per the
// auto-online policy. It returns the new block ids. Errors wrap EINVAL
// (bad node or size) or ENOMEM (no room). Auto-online failures are logged,
// not returned. Kernel: add_memory() → add_memory_resource() →
// online_memory_block().
func (s *System) AddMemory(node int, size int64) ([]int, error) {
	if node < 0 || node >= s.nodes {
		return nil, errnoErr(syscall.EINVAL, "add memory: bad node %d", node)
	}
	if size <= 0 || size%s.blockSize != 0 {
		return nil, errnoErr(syscall.EINVAL, "add memory: bad size %d (multiple of %d)", size, s.blockSize)
	}
	n := size / s.blockSize
	if n > int64(s.maxBlocks) {
		return nil, errnoErr(syscall.ENOMEM, "add memory: %d blocks exceed the range", n)
	}
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	ids, err := s.addLocked(node, int(n), -1)
	if err != nil {
		return nil, err
	}
	s.blocksAdded(ids)
	s.autoOnlineLocked(ids)
	return ids, nil
}

// Probe hot-adds the one block at "physical" address physAddr (an offset
// from Base) to node 0 and onlines it per the policy. Errors wrap EINVAL
// (unaligned or out of range) or EEXIST (already present).
// Kernel: probe_store() → __add_memory().
func (s *System) Probe(physAddr uint64) error {
	if physAddr%uint64(s.blockSize) != 0 {
		return errnoErr(syscall.EINVAL, "probe %#x: not block aligned", physAddr)
	}
	i := physAddr / uint64(s.blockSize)
	if i >= uint64(s.maxBlocks) {
		return errnoErr(syscall.EINVAL, "probe %#x: beyond the range", physAddr)
	}
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	return s.probeLocked(physAddr)
}

// ProbeLocked is Probe with device_hotplug_lock held by the caller.
func (s *System) ProbeLocked(physAddr uint64) error {
	if physAddr%uint64(s.blockSize) != 0 {
		return errnoErr(syscall.EINVAL, "probe %#x: not block aligned", physAddr)
	}
	if physAddr/uint64(s.blockSize) >= uint64(s.maxBlocks) {
		return errnoErr(syscall.EINVAL, "probe %#x: beyond the range", physAddr)
	}
	return s.probeLocked(physAddr)
}

func (s *System) probeLocked(physAddr uint64) error {
	i := physAddr / uint64(s.blockSize)
	if s.blocks[i].Load() != nil {
		return errnoErr(syscall.EEXIST, "probe %#x: block %d present", physAddr, i)
	}
	ids, err := s.addLocked(0, 1, int(i))
	if err != nil {
		return err
	}
	s.blocksAdded(ids)
	s.autoOnlineLocked(ids)
	return nil
}

// RemoveMemory hot-removes an offline block: its range goes back to the
// PROT_NONE reservation and its part of the vmemmap is discarded (its
// Pages read as zeros) and made read-only. Errors wrap EINVAL (not
// present) or EBUSY (not offline). Kernel: remove_memory().
func (s *System) RemoveMemory(block int) error {
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	return s.RemoveMemoryLocked(block)
}

// RemoveMemoryLocked is RemoveMemory with device_hotplug_lock held by the
// caller. The block devices are told (BlockRemoving: a sysfs directory
// drains its active references) with only device_hotplug_lock held: a
// store that holds an active reference and then takes the block's device
// lock or mem_hotplug_lock is no inversion with it.
func (s *System) RemoveMemoryLocked(block int) error {
	b, err := s.getBlock(block)
	if err != nil {
		return err
	}
	if st := BlockState(b.state.Load()); st != BlockOffline {
		// Stable: every state change takes device_hotplug_lock.
		return errnoErr(syscall.EBUSY, "remove block %d: %v", block, st)
	}
	if s.devices != nil {
		s.devices.BlockRemoving(block)
	}
	b.dev.Lock()
	defer b.dev.Unlock()
	s.memHotplug.Lock()
	defer s.memHotplug.Unlock()
	s.blocks[block].Store(nil)
	if err := s.unmapBlock(block); err != nil {
		s.log.Warn("mem: re-reserving a removed block failed", "block", block, "err", err)
	}
	s.log.Debug("mem: removed memory", "block", block)
	return nil
}
