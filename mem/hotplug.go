package mem

import (
	"context"
	"errors"
	"syscall"
	"time"
)

func (s *System) getBlock(i int) (*block, error) {
	if i < 0 || i >= s.maxBlocks {
		return nil, errnoErr(syscall.EINVAL, "block %d out of range", i)
	}
	b := s.blocks[i].Load()
	if b == nil {
		return nil, errnoErr(syscall.EINVAL, "block %d not present", i)
	}
	return b, nil
}

// addLocked creates n blocks on node, at index at (-1: the lowest free
// run). Caller holds device_hotplug_lock. Kernel: add_memory_resource()
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
		s.blocks[i].Store(b)
		ids = append(ids, i)
	}
	s.log.Debug("mem: added memory", "node", node, "blocks", ids)
	return ids, nil
}

// autoOnline onlines freshly added blocks per the policy, after
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
	if s.blocks[i].Load() != nil {
		return errnoErr(syscall.EEXIST, "probe %#x: block %d present", physAddr, i)
	}
	ids, err := s.addLocked(0, 1, int(i))
	if err != nil {
		return err
	}
	s.autoOnlineLocked(ids)
	return nil
}

// RemoveMemory hot-removes an offline block: its range goes back to the
// PROT_NONE reservation and its Page array is dropped. Errors wrap EINVAL
// (not present) or EBUSY (not offline). Kernel: remove_memory().
func (s *System) RemoveMemory(block int) error {
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	b, err := s.getBlock(block)
	if err != nil {
		return err
	}
	b.dev.Lock()
	defer b.dev.Unlock()
	if BlockState(b.state.Load()) != BlockOffline {
		return errnoErr(syscall.EBUSY, "remove block %d: %v", block, BlockState(b.state.Load()))
	}
	s.memHotplug.Lock()
	defer s.memHotplug.Unlock()
	s.blocks[block].Store(nil)
	if err := s.unmapBlock(block); err != nil {
		s.log.Warn("mem: re-reserving a removed block failed", "block", block, "err", err)
	}
	s.log.Debug("mem: removed memory", "block", block)
	return nil
}

func (s *System) notifyArg(b *block) MemoryNotify {
	return MemoryNotify{StartPFN: uint64(b.index) << (s.blockShift - PageShift),
		NrPages: uint64(s.pagesPerBlock), Block: b.index, Node: b.node}
}

// Online onlines an offline block into the zone kind selects. Errors wrap
// EINVAL (bad block, kind, or the block is not offline), EINTR (ctx done
// before it started) or the errno of a failing notifier; on failure the
// block stays offline. Kernel: memory_block_action(MEM_ONLINE) →
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
	// Pages to the buddy allocator, still isolated.
	z.lock.Lock()
	b.zone.Store(z)
	for i := 0; i < s.pagesPerBlock; i += 1 << s.blockOrder {
		b.pages[i].storeState(mkState(pgBuddy, s.blockOrder, 0))
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

// Offline offlines an online block: it drains the per-P lists, isolates
// the block, tells the notifiers, migrates pages that have a Migrator and
// waits for movable pages being freed, then takes the block's pages out of
// the zone and gives its memory back to the OS. Meanwhile the block reads
// going-offline. Errors wrap EINVAL (bad block, not online), EBUSY (an
// allocated page without GFPMovable or Migrator), ENOMEM (no page to
// migrate to), EINTR (ctx done) or a notifier's errno; on failure the
// block is online again with nothing lost, and MemCancelOffline (and
// NodeCancelRemovingLastMemory) went to every subscriber.
// Kernel: memory_block_action(MEM_OFFLINE) → offline_pages().
func (s *System) Offline(ctx context.Context, block int) error {
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	b, err := s.getBlock(block)
	if err != nil {
		return err
	}
	return s.offlineLocked(ctx, b)
}

func (s *System) offlineLocked(ctx context.Context, b *block) error {
	b.dev.Lock()
	defer b.dev.Unlock()
	if st := BlockState(b.state.Load()); st != BlockOnline {
		return errnoErr(syscall.EINVAL, "offline block %d: already %v", b.index, st)
	}
	s.memHotplug.Lock()
	defer s.memHotplug.Unlock()
	z := b.zone.Load()
	ni := &s.nodeInfo[b.node]
	last := ni.online == 1
	arg := s.notifyArg(b)

	s.drainAllPages() // kernel: zone_pcp_disable()
	z.lock.Lock()
	s.isolate(z, b)
	z.lock.Unlock()
	b.state.Store(int32(BlockGoingOffline))
	// After this drain no page of b is on a per-P list, and none can be
	// put on one: frees see b isolated (see drainAllPages).
	s.drainAllPages()

	fail := func(err error) error {
		z.lock.Lock()
		s.unisolate(z, b)
		z.lock.Unlock()
		b.state.Store(int32(BlockOnline))
		s.memChain.callAll(s.log, MemCancelOffline, arg)
		if last {
			s.nodeChain.callAll(s.log, NodeCancelRemovingLastMemory, b.node)
		}
		s.log.Debug("mem: offline failed", "block", b.index, "err", err)
		return err
	}
	if last {
		if err := s.nodeChain.call(NodeRemovingLastMemory, b.node); err != nil {
			return fail(err)
		}
	}
	if err := s.memChain.call(MemGoingOffline, arg); err != nil {
		return fail(err)
	}
	if err := s.evacuate(ctx, b); err != nil {
		return fail(err)
	}
	// Every page is free and isolated: take them out of the zone.
	z.lock.Lock()
	for i := range b.pages {
		b.pages[i].storeState(pgNone)
	}
	b.nrFree.Store(0)
	z.managed.Add(-int64(s.pagesPerBlock))
	z.nrBlk.Add(-1)
	b.zone.Store(nil)
	z.lock.Unlock()
	s.discard(b.index)
	if err := s.protect(b.index, false); err != nil {
		s.log.Warn("mem: mprotect(PROT_NONE) of an offline block failed", "block", b.index, "err", err)
	}
	ni.online--
	if z.kind == ZoneNormal {
		ni.normal--
	}
	s.setNodeMasks(b.node)
	b.state.Store(int32(BlockOffline))
	if last {
		s.nodeChain.callAll(s.log, NodeRemovedLastMemory, b.node)
	}
	s.memChain.callAll(s.log, MemOffline, arg)
	s.log.Debug("mem: offlined block", "block", b.index, "node", b.node)
	return nil
}

// evacuate loops until every page of the isolated block b is free:
// allocations with a Migrator are migrated, movable ones without are
// waited for, an unmovable one fails with EBUSY. Kernel: the
// scan_movable_pages / do_migrate_range / test_pages_isolated loop of
// offline_pages().
func (s *System) evacuate(ctx context.Context, b *block) error {
	backoff := 50 * time.Microsecond
	for {
		if b.nrFree.Load() == int64(s.pagesPerBlock) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return errnoErr(syscall.EINTR, "offline block %d: %v", b.index, err)
		}
		progress := false
		for i := 0; i < len(b.pages); {
			pg := &b.pages[i]
			st := pg.loadState()
			switch stKind(st) {
			case pgBuddy:
				i += 1 << stOrder(st)
				continue
			case pgAlloc:
			default:
				i++
				continue
			}
			order := stOrder(st)
			i += 1 << order
			if m := s.migrator(b.pageAddr(int(pg.idx)), st); m != nil {
				err := s.migrate(b, pg, st, m)
				if errors.Is(err, syscall.ENOMEM) {
					return err
				}
				if err == nil {
					progress = true
				}
				continue
			}
			if stGFP(st)&GFPMovable == 0 {
				return errnoErr(syscall.EBUSY, "offline block %d: unmovable page at %#x (order %d)",
					b.index, b.pageAddr(int(pg.idx)), order)
			}
		}
		if progress {
			backoff = 50 * time.Microsecond
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Millisecond)
	}
}

// migrate moves one allocation with a Migrator to a new page outside b.
// Kernel: migrate_pages() with alloc_migration_target().
func (s *System) migrate(b *block, pg *Page, st uint32, m Migrator) error {
	order := stOrder(st)
	old := b.pageAddr(int(pg.idx))
	newAddr := s.allocFromZonelist(b.node, order, stGFP(st)&GFPMovable)
	if newAddr == 0 {
		return errnoErr(syscall.ENOMEM, "offline block %d: no page to migrate %#x to", b.index, old)
	}
	// The Migrator goes with the page (new owns it from here on).
	_ = s.setMigrator(newAddr, m)
	if err := m.MigratePage(old, newAddr, order); err != nil {
		_ = s.setMigrator(newAddr, nil)
		_ = s.FreePages(newAddr, order)
		s.log.Debug("mem: migration failed, will retry", "addr", old, "err", err)
		return err
	}
	// The owner now uses newAddr; free old (unless it was freed already).
	// old cannot have been reallocated (its block is isolated), so a
	// pgAlloc head of the same order is still the allocation migrated;
	// only its pgMigrator bit may have changed meanwhile.
	for {
		cur := pg.loadState()
		if stKind(cur) != pgAlloc || stOrder(cur) != order {
			break
		}
		if pg.casState(cur, mkState(pgPcp, 0, 0)) {
			clearOwners(pg, order)
			if cur&pgMigrator != 0 {
				s.migs.Delete(old)
			}
			s.freeToBuddy(b, pg, order)
			break
		}
	}
	return nil
}

// Blocks returns the present blocks in ascending index order. It takes no
// lock: a block changing meanwhile shows one state or the other.
// Kernel: the /sys/devices/system/memory/memoryN directories.
func (s *System) Blocks() []BlockInfo {
	var out []BlockInfo
	for i := range s.blocks {
		if b := s.blocks[i].Load(); b != nil {
			out = append(out, s.info(b))
		}
	}
	return out
}

// Block returns the description of present block i, or an error wrapping
// EINVAL.
func (s *System) Block(i int) (BlockInfo, error) {
	b, err := s.getBlock(i)
	if err != nil {
		return BlockInfo{}, err
	}
	return s.info(b), nil
}

func (s *System) info(b *block) BlockInfo {
	bi := BlockInfo{Index: b.index, Node: b.node, State: BlockState(b.state.Load()),
		PhysAddr: uint64(b.index) << s.blockShift}
	if z := b.zone.Load(); z != nil {
		bi.Zone = z.kind
		bi.ValidZones = []Zone{z.kind}
		used := 0
		for i := 0; i < len(b.pages); {
			st := b.pages[i].loadState()
			switch stKind(st) {
			case pgAlloc:
				used += 1 << stOrder(st)
				i += 1 << stOrder(st)
			case pgBuddy:
				i += 1 << stOrder(st)
			default:
				i++
			}
		}
		bi.UsedPages = used
		bi.FreePages = s.pagesPerBlock - used
	} else {
		bi.Zone = s.defaultZone(b)
		bi.ValidZones = []Zone{bi.Zone, ZoneNormal + ZoneMovable - bi.Zone}
	}
	return bi
}

// Stats returns the page allocator's counters. Per-P counts are read
// without stopping their owners, so they are exact only when no
// allocation runs. Kernel: /proc/zoneinfo.
func (s *System) Stats() Stats {
	pz, a, f := s.pcpCounts()
	st := Stats{Allocs: a + s.slowAllocs.Load(), Frees: f + s.slowFrees.Load()}
	for i := range s.zones {
		z := &s.zones[i]
		m := z.managed.Load()
		st.Zones = append(st.Zones, ZoneStats{Node: z.node, Zone: z.kind, Present: m, Managed: m,
			Free: z.nrFree.Load() + pz[i], PerPFree: pz[i]})
		st.OnlineBlocks += int(z.nrBlk.Load())
	}
	for i := range s.blocks {
		if s.blocks[i].Load() != nil {
			st.PresentBlocks++
		}
	}
	return st
}
