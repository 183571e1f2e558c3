//go:build linux

// A stress test of allocation and hotplug running together.

package mem

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// stressSlot is one live allocation of a worker; it is also the
// allocation's Migrator when movable.
type stressSlot struct {
	t     testing.TB
	s     *System
	mu    sync.Mutex
	addr  uintptr
	order int
	tag   uint64
	owned *sync.Map // addr -> tag, updated on migration
	freed bool
}

func (sl *stressSlot) MigratePage(old, new uintptr, order int) error {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.freed || sl.addr != old || sl.order != order {
		return errors.New("not mine any more")
	}
	n := uintptr(PageSize) << order
	copy(sl.s.bytes(new, n), sl.s.bytes(old, n))
	sl.addr = new
	if sl.owned != nil {
		sl.owned.Delete(old)
		if prev, loaded := sl.owned.LoadOrStore(new, sl.tag); loaded {
			// Called by Offline on the hotplug goroutine: report,
			// never FailNow.
			sl.t.Errorf("migration target %#x owned twice (by %x, now %x)", new, prev, sl.tag)
		}
	}
	return nil
}

func writeTag(s *System, addr uintptr, order int, tag uint64) {
	n := uintptr(PageSize) << order
	binary.LittleEndian.PutUint64(s.bytes(addr, 8), tag)
	binary.LittleEndian.PutUint64(s.bytes(addr+n-8, 8), tag)
}

func checkTag(t testing.TB, s *System, addr uintptr, order int, tag uint64) {
	n := uintptr(PageSize) << order
	a := binary.LittleEndian.Uint64(s.bytes(addr, 8))
	b := binary.LittleEndian.Uint64(s.bytes(addr+n-8, 8))
	if a != tag || b != tag {
		t.Errorf("page %#x order %d: tag %x/%x, want %x (handed out twice?)", addr, order, a, b, tag)
	}
}

// TestStressHotplug allocates and frees on all nodes while blocks are
// added, onlined, offlined and removed; every allocation carries an owner
// tag that must survive until its free (and migrations), no page is owned
// twice, none comes from an offline block, and at the end free == managed.
//
// No timer bounds an offline: it ends when its block is evacuated (the
// workers keep freeing, and free everything when they stop), with EBUSY or
// ENOMEM, or with EINTR when its context is cancelled — which happens at
// MEM_GOING_OFFLINE for a random quarter of the offlines (the
// interrupted-offline path, chosen by the seeded generator, not by a
// clock), or when the test stops.
func TestStressHotplug(t *testing.T) {
	s := newTest(t, Config{Nodes: 2, BlockSize: 1 << 20, InitialPerNode: 2 << 20, MaxBlocks: 32})
	stressHotplug(t, s, false)
}

// stressHotplug is the body of TestStressHotplug on s; with zero, a
// quarter of the allocations are GFPZero and must read zeros.
func stressHotplug(t *testing.T, s *System, zero bool) {
	dur := 3 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	var (
		stop  atomic.Bool
		owned sync.Map // addr -> tag
		wg    sync.WaitGroup
		tags  atomic.Uint64
		nOps  atomic.Int64
		hpOps [4]atomic.Int64
	)
	const workers = 4
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var live []*stressSlot
			free := func(sl *stressSlot) {
				sl.mu.Lock()
				defer sl.mu.Unlock()
				checkTag(t, s, sl.addr, sl.order, sl.tag)
				if _, ok := owned.LoadAndDelete(sl.addr); !ok {
					t.Errorf("freeing %#x not owned", sl.addr)
				}
				sl.freed = true
				if err := s.FreePages(sl.addr, sl.order); err != nil {
					t.Errorf("free %#x order %d: %v", sl.addr, sl.order, err)
				}
				sl.addr = 0
			}
			for !stop.Load() {
				nOps.Add(1)
				if len(live) > 0 && (len(live) > 64 || rng.IntN(2) == 0) {
					i := rng.IntN(len(live))
					free(live[i])
					live[i] = live[len(live)-1]
					live = live[:len(live)-1]
					continue
				}
				order := 0
				if rng.IntN(4) == 0 {
					order = rng.IntN(4)
				}
				var gfp GFP
				switch rng.IntN(4) {
				case 0:
					gfp = GFPMovable
				case 1:
					gfp = GFPMovable | GFPThisNode
				}
				if zero && rng.IntN(4) == 0 {
					gfp |= GFPZero
				}
				node := rng.IntN(3) - 1
				addr, err := s.AllocPages(node, order, gfp)
				if err != nil {
					if !errors.Is(err, syscall.ENOMEM) {
						t.Errorf("alloc: %v", err)
					}
					continue
				}
				pg := s.PageOf(addr)
				if pg == nil || BlockState(s.pageBlock(pg).state.Load()) == BlockOffline {
					t.Errorf("page %#x from an absent or offline block", addr)
					continue
				}
				tag := tags.Add(1)
				if prev, loaded := owned.LoadOrStore(addr, tag); loaded {
					t.Errorf("page %#x handed out twice (owner %x)", addr, prev)
					continue
				}
				if gfp&GFPZero != 0 {
					for i, c := range s.bytes(addr, PageSize<<order) {
						if c != 0 {
							t.Errorf("GFPZero allocation %#x order %d: byte %d is %#x", addr, order, i, c)
							break
						}
					}
				}
				sl := &stressSlot{t: t, s: s, addr: addr, order: order, tag: tag}
				writeTag(s, addr, order, tag)
				if gfp&GFPMovable != 0 && rng.IntN(2) == 0 {
					sl.owned = &owned
					s.SetMigrator(addr, sl)
				}
				live = append(live, sl)
			}
			for _, sl := range live {
				free(sl)
			}
		}(w)
	}
	// stopCtx ends an offline still waiting for movable pages when the
	// test stops; cancelOffline, set by the hotplug goroutine around an
	// Offline, is called by the notifier (on that goroutine, inside
	// Offline) at MEM_GOING_OFFLINE.
	stopCtx, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	var cancelOffline context.CancelFunc
	var interrupted atomic.Int64
	unreg := s.RegisterMemoryNotifier("stress", 0, func(ev MemoryEvent, _ MemoryNotify) error {
		if ev == MemGoingOffline && cancelOffline != nil {
			cancelOffline()
		}
		return nil
	})
	defer unreg()
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(99, 1))
		ctx := stopCtx
		for !stop.Load() {
			blocks := s.Blocks()
			op := rng.IntN(4)
			hpOps[op].Add(1)
			switch op {
			case 0:
				if len(blocks) < 16 {
					if _, err := s.AddMemory(rng.IntN(2), s.BlockSize()); err != nil {
						t.Errorf("add: %v", err)
					}
				}
			case 1:
				for _, b := range blocks {
					if b.State == BlockOffline {
						kind := []OnlineKind{OnlineDefault, OnlineKernel, OnlineMovable}[rng.IntN(3)]
						// The test's stop cancels ctx: an online it
						// interrupts fails with EINTR, as it should.
						if err := s.Online(ctx, b.Index, kind); err != nil && !(stop.Load() && errors.Is(err, syscall.EINTR)) {
							t.Errorf("online %d: %v", b.Index, err)
						}
						break
					}
				}
			case 2:
				b := blocks[rng.IntN(len(blocks))]
				if b.State == BlockOnline {
					c, cancel := context.WithCancel(ctx)
					if rng.IntN(4) == 0 {
						cancelOffline = cancel
					}
					err := s.Offline(c, b.Index)
					cancelOffline = nil
					cancel()
					if errors.Is(err, syscall.EINTR) {
						interrupted.Add(1)
					}
					if err != nil && !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EINTR) &&
						!errors.Is(err, syscall.ENOMEM) {
						t.Errorf("offline %d: %v", b.Index, err)
					}
				}
			case 3:
				b := blocks[rng.IntN(len(blocks))]
				if b.State == BlockOffline {
					if err := s.RemoveMemory(b.Index); err != nil {
						t.Errorf("remove %d: %v", b.Index, err)
					}
				}
			}
		}
	}()
	time.Sleep(dur) // how long to stress, not a deadline anything must meet
	stop.Store(true)
	stopAll()
	wg.Wait()
	t.Logf("%d allocator ops; hotplug add/online/offline/remove: %d/%d/%d/%d (%d offlines interrupted)", nOps.Load(),
		hpOps[0].Load(), hpOps[1].Load(), hpOps[2].Load(), hpOps[3].Load(), interrupted.Load())
	owned.Range(func(k, v any) bool {
		pg := s.PageOf(k.(uintptr))
		var sa uintptr
		var st uint64
		if m := s.migrator(k.(uintptr), pg.loadState()); m != nil {
			sa, st = m.(*stressSlot).addr, m.(*stressSlot).tag
		}
		t.Errorf("page %#x still owned (tag %x); block %d state %x slot addr %#x tag %x", k, v, s.BlockOf(k.(uintptr)), pg.loadState(), sa, st)
		return true
	})
	checkFree(t, s)
	for _, b := range s.Blocks() {
		if b.UsedPages != 0 {
			t.Errorf("block %d: %d pages still used", b.Index, b.UsedPages)
		}
		if b.State == BlockOnline && b.FreePages != s.pagesPerBlock {
			t.Errorf("block %d: %d free pages", b.Index, b.FreePages)
		}
	}
}
