//go:build linux

// Offlining a block: Offline, and evacuate, the loop that migrates,
// waits for or refuses the block's allocated pages.

package mem

import (
	"context"
	"errors"
	"syscall"
	"time"
)

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

// offlineLocked offlines b. Caller holds device_hotplug_lock; it takes the
// block's device lock and mem_hotplug_lock (write).
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
	// put on one: frees and refills see b isolated while pinned (see
	// drainAllPages, pcpPush).
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
	b.zero = s.discard(b.index)
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
			case pgBuddy, pgReporting:
				// pgReporting: the page reporter puts it back
				// (into the isolated block) shortly.
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
