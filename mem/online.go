//go:build linux

// Onlining a block: Online, and the choice of the default zone.

package mem

import (
	"context"
	"syscall"
)

// Online onlines an offline block into the zone kind selects. Errors wrap
// EINVAL (bad block, kind, or the block is not offline), EINTR (ctx done
// before it started), ENOMEM (the block could not be made accessible) or
// the errno of a failing notifier; on failure the block stays offline. Kernel: memory_block_action(MEM_ONLINE) →
// online_pages().
func (s *System) Online(ctx context.Context, block int, kind OnlineKind) error {
	if !kind.valid() {
		return errnoErr(syscall.EINVAL, "online block %d: bad kind %v", block, kind)
	}
	if err := ctx.Err(); err != nil {
		return errnoErr(syscall.EINTR, "online block %d: %v", block, err)
	}
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	b, err := s.getBlock(block)
	if err != nil {
		return err
	}
	return s.onlineLocked(b, kind)
}

// onlineLocked onlines b. Caller holds device_hotplug_lock; it takes the
// block's device lock and mem_hotplug_lock (write).
func (s *System) onlineLocked(b *block, kind OnlineKind) error {
	b.dev.Lock()
	defer b.dev.Unlock()
	if st := BlockState(b.state.Load()); st != BlockOffline {
		return errnoErr(syscall.EINVAL, "online block %d: already %v", b.index, st)
	}
	zt := ZoneNormal
	switch kind {
	case OnlineMovable:
		zt = ZoneMovable
	case OnlineDefault:
		zt = s.defaultZone(b)
	}
	s.memHotplug.Lock()
	defer s.memHotplug.Unlock()
	z := &s.zones[b.node*int(nrZones)+int(zt)]
	ni := &s.nodeInfo[b.node]
	first := ni.online == 0
	arg := s.notifyArg(b)
	fail := func(err error) error {
		s.memChain.callAll(s.log, MemCancelOnline, arg)
		if first {
			s.nodeChain.callAll(s.log, NodeCancelAddingFirstMemory, b.node)
		}
		s.log.Debug("mem: online failed", "block", b.index, "err", err)
		return err
	}
	if first {
		if err := s.nodeChain.call(NodeAddingFirstMemory, b.node); err != nil {
			return fail(err)
		}
	}
	if err := s.memChain.call(MemGoingOnline, arg); err != nil {
		return fail(err)
	}
	if err := s.protect(b.index, true); err != nil {
		return fail(errnoErr(syscall.ENOMEM, "online block %d: mprotect: %v", b.index, err))
	}
	// Pages to the buddy allocator, still isolated; reported if the
	// block's memory is known to be zeros and not resident.
	st := mkState(pgBuddy, s.blockOrder, 0)
	if b.zero {
		st |= pgReported
	}
	b.zero = false
	z.lock.Lock()
	b.zone.Store(z)
	for i := 0; i < s.pagesPerBlock; i += 1 << s.blockOrder {
		b.pages[i].storeState(st)
	}
	b.nrFree.Store(int64(s.pagesPerBlock))
	z.managed.Add(int64(s.pagesPerBlock))
	z.nrBlk.Add(1)
	z.lock.Unlock()
	// Node states, then un-isolate.
	ni.online++
	if zt == ZoneNormal {
		ni.normal++
	}
	s.setNodeMasks(b.node)
	z.lock.Lock()
	s.unisolate(z, b)
	z.lock.Unlock()
	b.state.Store(int32(BlockOnline))
	if first {
		s.nodeChain.callAll(s.log, NodeAddedFirstMemory, b.node)
	}
	s.memChain.callAll(s.log, MemOnline, arg)
	s.log.Debug("mem: onlined block", "block", b.index, "node", b.node, "zone", zt.String())
	return nil
}

// zoneSpans reports whether block b lies within the span (lowest to
// highest online block) of its node's Normal and Movable zones.
// Kernel: zone_intersects().
func (s *System) zoneSpans(b *block) (inNormal, inMovable bool) {
	var lo, hi [nrZones]int
	for z := range lo {
		lo[z], hi[z] = -1, -1
	}
	for i := range s.blocks {
		o := s.blocks[i].Load()
		if o == nil || o.node != b.node {
			continue
		}
		z := o.zone.Load()
		if z == nil {
			continue
		}
		if lo[z.kind] < 0 {
			lo[z.kind] = i
		}
		hi[z.kind] = i
	}
	in := func(z Zone) bool { return lo[z] >= 0 && b.index >= lo[z] && b.index <= hi[z] }
	return in(ZoneNormal), in(ZoneMovable)
}

// defaultZone is the zone "online" picks: the one zone whose span the
// block lies in, else Normal. Kernel: default_zone_for_pfn().
func (s *System) defaultZone(b *block) Zone {
	n, m := s.zoneSpans(b)
	if m && !n {
		return ZoneMovable
	}
	return ZoneNormal
}
