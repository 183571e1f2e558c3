//go:build linux

// System: its lock classes, fields, construction (New) and teardown
// (Close), and its fixed geometry.

package mem

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hotslab/hotslab/fault"
	"github.com/hotslab/hotslab/internal/percpu"
	"github.com/hotslab/hotslab/lockdep"
)

// Lock classes. Order, outermost first (see doc.go):
// device_hotplug_lock → mem_block_device_lock → mem_hotplug_lock →
// memory_chain / node_chain → (callers' locks) → pcp_drain_mutex or
// page_reporting_mutex (never nested) → zone_lock.
var (
	deviceHotplugClass = lockdep.NewClass("device_hotplug_lock")
	blockDevClass      = lockdep.NewClass("mem_block_device_lock")
	memHotplugClass    = lockdep.NewClass("mem_hotplug_lock")
	memChainClass      = lockdep.NewClass("memory_chain.rwsem")
	nodeChainClass     = lockdep.NewClass("node_chain.rwsem")
	drainClass         = lockdep.NewClass("pcp_drain_mutex")
	reportClass        = lockdep.NewClass("page_reporting_mutex")
	zoneLockClass      = lockdep.NewClass("zone_lock")
)

// System is a machine's memory: nodes, zones, memory blocks in one reserved
// address range, the page allocator and the hotplug operations. All
// methods are safe for concurrent use.
type System struct {
	log           *slog.Logger
	nodes         int
	blockSize     int64
	blockShift    uint
	pagesPerBlock int
	blockOrder    int // largest buddy order inside one block
	maxBlocks     int
	backing       Backing
	fd            int // memfd or file; -1 for anonymous memory

	base    uintptr
	basePtr unsafe.Pointer
	size    uintptr

	// vmemmap is the virtually contiguous array of every Page of the
	// range (SPARSEMEM_VMEMMAP): pfn's Page is vmemmap[pfn]. Reserved
	// read-only (absent blocks read as zeros); a block's part is made
	// read-write when the block is added, and discarded (zero-filled)
	// and made read-only again on remove. Unmapped by Close.
	vmemmap     unsafe.Pointer
	vmemmapSize uintptr
	pm          PageMap // PageOf's copy of base, size, blocks, vmemmap

	// blocks: index → present block or nil. Stored under
	// device_hotplug_lock and mem_hotplug_lock (write); loaded lock-free.
	blocks []atomic.Pointer[block]
	zones  []zone // node*nrZones + zone
	// zonelists[node][movable]: fallback order, local node first.
	zonelists [][2][]*zone
	localNode []int // P id → node

	pcp []perP
	// migs maps the address of an allocation's head page with
	// pgMigrator set to its Migrator (SetMigrator; rare).
	migs       sync.Map
	slowAllocs atomic.Uint64
	slowFrees  atomic.Uint64

	autoOnline atomic.Int32 // Policy

	// deviceHotplug (device_hotplug_lock) serialises the hotplug
	// operations (AddMemory, Probe, Online, Offline, RemoveMemory, New's
	// boot memory, Close) and guards closed.
	deviceHotplug lockdep.Mutex
	// failPage and failMinOrder are fail_page_alloc (failpage.go).
	failPage     *fault.Attr
	failMinOrder atomic.Int32
	// devices (under deviceHotplug) is told of block creation and
	// removal (device.go).
	devices BlockDevices
	// memHotplug (mem_hotplug_lock) is held for writing by an operation
	// while it changes blocks, a block's zone or the node state, and for
	// reading by GetOnlineMems.
	memHotplug *lockdep.PerPRWSem
	// drainMu (pcp_drain_mutex) admits one drainer of the per-P lists at
	// a time: the drainer owns the stolen flags.
	drainMu lockdep.Mutex

	// nodeInfo and the masks are written under memHotplug (write); the
	// masks are atomics for lock-free readers.
	nodeInfo []nodeInfo
	nMemory  atomic.Uint64 // N_MEMORY mask
	nNormal  atomic.Uint64 // N_NORMAL_MEMORY mask

	memChain  chain[MemoryEvent, MemoryNotify]
	nodeChain chain[NodeEvent, int]

	// Free page reporting (report.go). reportMu (page_reporting_mutex)
	// is held by the page reporter across one batch: chunks off the
	// free lists, their memory given back, chunks back. An allocation
	// that found nothing while a batch was out waits for it there.
	reportMu    lockdep.Mutex
	reportOrder atomic.Int32 // smallest order reported
	reportDelay atomic.Int64 // background delay (time.Duration); negative: off
	// reportReq: a background pass is requested (set by frees that
	// leave an unreported chunk of the reporting order or more, cleared
	// by the reporter when it starts the pass).
	reportReq  atomic.Uint32
	reportWake chan struct{} // capacity 1: wakes the reporter, never blocks
	// reportBusy counts batches out; reportSeq is bumped when one
	// starts and when it ends (allocWait).
	reportBusy atomic.Int32
	reportSeq  atomic.Uint64
	// reportClosed: Close stopped reporting (set under reportMu; every
	// batch checks it there).
	reportClosed  atomic.Bool
	reportedBytes atomic.Uint64 // bytes given back since New
	reportWaits   atomic.Uint64 // allocations that waited for a batch (allocWait)
	// Test hooks: reportHook is called after every background pass with
	// the bytes it gave back; reportMidHook in every batch after the
	// memory was given back, before the chunks go back (zone lock not
	// held, page_reporting_mutex held).
	reportHook    atomic.Pointer[func(int64)]
	reportMidHook atomic.Pointer[func()]
	// The background reporter's cancel and done (under deviceHotplug).
	reportCancel context.CancelFunc
	reportDone   chan struct{}

	closed bool // under deviceHotplug
}

// New creates a System: it reserves the address range, adds
// InitialPerNode bytes of memory to every node and onlines it into
// ZoneNormal. Kernel: the boot-time memory setup (memblock, free_area_init,
// memory_dev_init).
func New(cfg Config) (*System, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = defaultNodes
	}
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, errnoErr(syscall.EINVAL, "bad node count %d", cfg.Nodes)
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = defaultBlockSize
	}
	if cfg.BlockSize < 1<<20 || cfg.BlockSize&(cfg.BlockSize-1) != 0 {
		return nil, errnoErr(syscall.EINVAL, "bad block size %d (power of two >= 1 MiB)", cfg.BlockSize)
	}
	if cfg.MaxBlocks == 0 {
		cfg.MaxBlocks = int(min(defaultRange/cfg.BlockSize, defaultMaxBlocks))
	}
	// Fewer than 2^32 pages: free-list links are uint32 pfns.
	if cfg.MaxBlocks < 1 || uint64(cfg.MaxBlocks)*uint64(cfg.BlockSize) >= 1<<(32+PageShift) {
		return nil, errnoErr(syscall.EINVAL, "bad MaxBlocks %d", cfg.MaxBlocks)
	}
	if cfg.InitialPerNode == 0 {
		cfg.InitialPerNode = 2 * cfg.BlockSize
	}
	if cfg.InitialPerNode < 0 {
		cfg.InitialPerNode = 0
	}
	if cfg.InitialPerNode%cfg.BlockSize != 0 ||
		cfg.InitialPerNode/cfg.BlockSize*int64(cfg.Nodes) > int64(cfg.MaxBlocks) {
		return nil, errnoErr(syscall.EINVAL, "bad initial memory %d per node", cfg.InitialPerNode)
	}
	if !cfg.AutoOnline.valid() {
		return nil, errnoErr(syscall.EINVAL, "bad auto-online policy %d", cfg.AutoOnline)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	blockOrder := min(MaxOrder, bits.TrailingZeros64(uint64(cfg.BlockSize))-PageShift)
	if cfg.ReportingOrder == 0 {
		cfg.ReportingOrder = min(DefaultReportingOrder, blockOrder)
	}
	if cfg.ReportingOrder < 0 || cfg.ReportingOrder > blockOrder {
		return nil, errnoErr(syscall.EINVAL, "bad reporting order %d (0 for the default, or up to %d)", cfg.ReportingOrder, blockOrder)
	}
	if cfg.ReportingDelay == 0 {
		cfg.ReportingDelay = DefaultReportingDelay
	}
	if cfg.ReportingDelay < 0 {
		cfg.ReportingDelay = -1
	}
	s := &System{
		log:           cfg.Logger,
		nodes:         cfg.Nodes,
		blockSize:     cfg.BlockSize,
		blockShift:    uint(bits.TrailingZeros64(uint64(cfg.BlockSize))),
		pagesPerBlock: int(cfg.BlockSize >> PageShift),
		maxBlocks:     cfg.MaxBlocks,
		backing:       cfg.Backing,
		fd:            -1,
		size:          uintptr(cfg.MaxBlocks) * uintptr(cfg.BlockSize),
	}
	s.blockOrder = blockOrder
	s.autoOnline.Store(int32(cfg.AutoOnline))
	s.reportOrder.Store(int32(cfg.ReportingOrder))
	s.reportDelay.Store(int64(cfg.ReportingDelay))
	s.reportWake = make(chan struct{}, 1)
	if err := s.reserve(cfg); err != nil {
		return nil, err
	}
	s.blocks = make([]atomic.Pointer[block], s.maxBlocks)
	s.pm = PageMap{base: s.base, size: s.size, shift: s.blockShift, blocks: s.blocks, vmemmap: s.vmemmap}
	s.zones = make([]zone, s.nodes*int(nrZones))
	for n := 0; n < s.nodes; n++ {
		for z := Zone(0); z < nrZones; z++ {
			zn := &s.zones[n*int(nrZones)+int(z)]
			zn.node, zn.kind, zn.idx = n, z, n*int(nrZones)+int(z)
			zn.lock.Init(zoneLockClass)
			for o := range zn.free {
				zn.free[o], zn.freeRep[o] = nilPFN, nilPFN
			}
		}
	}
	s.zonelists = make([][2][]*zone, s.nodes)
	for n := 0; n < s.nodes; n++ {
		for i := 0; i < s.nodes; i++ {
			nn := (n + i) % s.nodes
			normal := &s.zones[nn*int(nrZones)+int(ZoneNormal)]
			movable := &s.zones[nn*int(nrZones)+int(ZoneMovable)]
			s.zonelists[n][0] = append(s.zonelists[n][0], normal)
			s.zonelists[n][1] = append(s.zonelists[n][1], movable, normal)
		}
	}
	s.localNode = make([]int, percpu.MaxProcs())
	for i := range s.localNode {
		s.localNode[i] = i % s.nodes
	}
	s.pcp = make([]perP, percpu.MaxProcs())
	for i := range s.pcp {
		s.pcp[i].lists = make([]pcpList, len(s.zones))
	}
	s.nodeInfo = make([]nodeInfo, s.nodes)
	s.deviceHotplug.Init(deviceHotplugClass)
	s.failPage = fault.New("fail_page_alloc", s.log)
	s.failMinOrder.Store(DefaultFailMinOrder)
	s.memHotplug = lockdep.NewPerPRWSem(memHotplugClass)
	s.drainMu.Init(drainClass)
	s.reportMu.Init(reportClass)
	s.memChain.init(memChainClass, "memory")
	s.nodeChain.init(nodeChainClass, "node")

	per := int(cfg.InitialPerNode / cfg.BlockSize)
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	for n := 0; n < s.nodes && per > 0; n++ {
		ids, err := s.addLocked(n, per, -1)
		if err == nil {
			for _, id := range ids {
				if err = s.onlineLocked(s.blocks[id].Load(), OnlineKernel); err != nil {
					break
				}
			}
		}
		if err != nil {
			s.closeLocked()
			return nil, err
		}
	}
	s.startReporter()
	s.log.Debug("mem: system ready", "nodes", s.nodes, "block_size", s.blockSize,
		"max_blocks", s.maxBlocks, "base", fmt.Sprintf("%#x", s.base), "backing", s.backing,
		"reporting_order", cfg.ReportingOrder, "reporting_delay", cfg.ReportingDelay)
	return s, nil
}

// Close stops the background page reporter, unmaps the whole range and
// releases the backing. Every address handed out becomes invalid; the
// System must not be used afterwards.
func (s *System) Close() error {
	s.deviceHotplug.Lock()
	defer s.deviceHotplug.Unlock()
	return s.closeLocked()
}

func (s *System) closeLocked() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopReporter()
	s.memHotplug.Lock()
	s.drainAllPages()
	for i := range s.blocks {
		s.blocks[i].Store(nil)
	}
	for i := range s.zones {
		z := &s.zones[i]
		z.lock.Lock()
		for o := range z.free {
			z.free[o], z.freeRep[o] = nilPFN, nilPFN
		}
		z.nrFree.Store(0)
		z.nrReported.Store(0)
		z.managed.Store(0)
		z.lock.Unlock()
	}
	s.memHotplug.Unlock()
	err := unix.MunmapPtr(s.basePtr, s.size)
	if e := unix.MunmapPtr(s.vmemmap, s.vmemmapSize); err == nil {
		err = e
	}
	if s.fd >= 0 {
		if e := unix.Close(s.fd); err == nil {
			err = e
		}
		s.fd = -1
	}
	if err != nil {
		return fmt.Errorf("mem: close: %w", err)
	}
	return nil
}

// NumNodes returns the number of nodes.
func (s *System) NumNodes() int { return s.nodes }

// BlockSize returns the memory block size in bytes.
func (s *System) BlockSize() int64 { return s.blockSize }

// MaxBlocks returns the number of blocks the reserved range can hold.
func (s *System) MaxBlocks() int { return s.maxBlocks }

// Base returns the start of the reserved range: "physical" address 0. It
// is aligned to BlockSize, so an allocation of order o is aligned to
// PageSize<<o.
func (s *System) Base() uintptr { return s.base }

// errnoErr returns an error "mem: <format>: <errno>" that wraps errno.
func errnoErr(errno syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("mem: "+format+": %w", append(args, errno)...)
}
