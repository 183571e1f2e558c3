//go:build linux

// Node state: the per-node online counts, the N_MEMORY and
// N_NORMAL_MEMORY masks, the P → node map, and GetOnlineMems, which keeps
// them stable.

package mem

// nodeInfo counts a node's online blocks. Read and written under
// mem_hotplug_lock (write).
type nodeInfo struct {
	online int // online blocks
	normal int // online blocks in ZoneNormal
}

// setNodeMasks recomputes node n's bits of N_MEMORY and N_NORMAL_MEMORY
// from its nodeInfo. Caller holds mem_hotplug_lock (write).
func (s *System) setNodeMasks(n int) {
	ni := &s.nodeInfo[n]
	bit := uint64(1) << n
	if ni.online > 0 {
		s.nMemory.Or(bit)
	} else {
		s.nMemory.And(^bit)
	}
	if ni.normal > 0 {
		s.nNormal.Or(bit)
	} else {
		s.nNormal.And(^bit)
	}
}

// LocalNode returns the node of P id pid (pid % NumNodes()).
// Kernel: cpu_to_node().
func (s *System) LocalNode(pid int) int {
	if pid >= 0 && pid < len(s.localNode) {
		return s.localNode[pid]
	}
	if pid < 0 {
		return 0
	}
	return pid % s.nodes
}

// NodeHasMemory reports whether node nid has online memory (N_MEMORY).
// The answer is stable while the caller holds GetOnlineMems.
// Kernel: node_state(nid, N_MEMORY).
func (s *System) NodeHasMemory(nid int) bool {
	return nid >= 0 && nid < s.nodes && s.nMemory.Load()&(1<<nid) != 0
}

// NodeHasNormalMemory reports whether node nid has online ZoneNormal
// memory (N_NORMAL_MEMORY, sysfs has_normal_memory). Stable under
// GetOnlineMems.
func (s *System) NodeHasNormalMemory(nid int) bool {
	return nid >= 0 && nid < s.nodes && s.nNormal.Load()&(1<<nid) != 0
}

// MemoryNodes returns the N_MEMORY mask (bit n: node n has memory).
// Stable under GetOnlineMems.
func (s *System) MemoryNodes() uint64 { return s.nMemory.Load() }

// GetOnlineMems takes mem_hotplug_lock for reading: until PutOnlineMems no
// block goes online or offline and the node masks are stable. Readers are
// not recursive (never nest it, never call it from a notifier callback).
// Kernel: get_online_mems().
func (s *System) GetOnlineMems() { s.memHotplug.RLock() }

// PutOnlineMems releases what GetOnlineMems took. Kernel: put_online_mems().
func (s *System) PutOnlineMems() { s.memHotplug.RUnlock() }
