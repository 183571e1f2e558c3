//go:build linux

// Memory blocks: the block type (struct memory_block and its part of the
// vmemmap), BlockState, and the BlockInfo descriptions of Blocks and
// Block.

package mem

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
)

// BlockState is the state of a memory block, as its sysfs "state" file
// reads.
type BlockState int

const (
	// BlockOffline: present but not usable; its memory is given back to
	// the OS.
	BlockOffline BlockState = iota
	// BlockGoingOffline: an Offline is in progress.
	BlockGoingOffline
	// BlockOnline: its pages belong to a zone's buddy allocator.
	BlockOnline
)

// String returns the sysfs word for st.
func (st BlockState) String() string {
	switch st {
	case BlockOffline:
		return "offline"
	case BlockGoingOffline:
		return "going-offline"
	case BlockOnline:
		return "online"
	}
	return fmt.Sprintf("BlockState(%d)", int(st))
}

// block is a memory block: the kernel's struct memory_block plus the
// struct pages of its range.
type block struct {
	index int
	node  int
	addr  uintptr
	pfn   uint32        // pfn of pages[0]
	dev   lockdep.Mutex // mem_block_device_lock: held across Online/Offline/Remove of this block
	state atomic.Int32  // BlockState
	// zone is the zone the block is online in (nil while offline). Set
	// under mem_hotplug_lock (write) and the zone lock.
	zone atomic.Pointer[zone]
	// isolated: the block's free pages are not on any free list, and no
	// page of it is pushed on a per-P list (order-0 frees and refills
	// check it while pinned). True while offline and going offline. Set
	// by addLocked before the block is published, then written only under
	// the zone lock (isolate, unisolate).
	isolated atomic.Bool
	// nrFree counts the block's pages in the buddy allocator, isolated
	// or not. Written under the zone lock; Offline's evacuate reads it
	// lock-free.
	nrFree atomic.Int64
	// zero: the block's memory is known to read as zeros and not to be
	// resident (fresh anonymous or memfd memory, or discarded by an
	// offline), so onlining marks its chunks reported. Under the block's
	// device lock (or before the block is published).
	zero bool
	// pages[i] describes page i: the block's part of the vmemmap.
	pages []Page
}

// newBlock makes block i of s with its Pages.
func (s *System) newBlock(i, node int) *block {
	b := &block{index: i, node: node, addr: s.base + uintptr(i)<<s.blockShift,
		pfn: uint32(i << (s.blockShift - PageShift))}
	b.pages = unsafe.Slice((*Page)(unsafe.Add(s.vmemmap, uintptr(i*s.pagesPerBlock)*pageSize)), s.pagesPerBlock)
	for j := range b.pages {
		b.pages[j] = Page{idx: uint32(j), next: nilPFN, prev: nilPFN}
	}
	return b
}

func (b *block) pageAddr(i int) uintptr { return b.addr + uintptr(i)<<PageShift }

// getBlock returns present block i, or an error wrapping EINVAL.
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

// BlockInfo describes a present memory block.
type BlockInfo struct {
	Index      int        // block number (memoryN)
	Node       int        // node the block belongs to
	State      BlockState // offline, going-offline, online
	Zone       Zone       // zone when online; the default zone otherwise
	ValidZones []Zone     // online: its zone; offline: default zone first
	PhysAddr   uint64     // Index * BlockSize
	FreePages  int        // free pages (buddy and per-P lists); 0 when offline
	UsedPages  int        // allocated pages
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

// info describes b from lock-free reads of its state, zone and Pages.
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
			case pgBuddy, pgReporting:
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
