package mem

import (
	"fmt"
	"log/slog"
	"strings"
	"syscall"
)

// PageShift is log2 of the page size.
const PageShift = 12

// PageSize is the size of one page, 4 KiB.
const PageSize = 1 << PageShift

// MaxOrder is the largest buddy order: allocations are 2^0 .. 2^MaxOrder
// pages (4 KiB .. 4 MiB). A block smaller than 2^MaxOrder pages limits the
// largest order to its own size. Kernel: MAX_PAGE_ORDER.
const MaxOrder = 10

// NumaNoNode asks for the local node of the calling P (AllocPages) and is
// the node of an address outside every present block (PageNode).
// Kernel: NUMA_NO_NODE.
const NumaNoNode = -1

// MaxNodes is the largest number of nodes a System may have.
const MaxNodes = 64

// Policy is what happens to a hot-added block: the values of
// /sys/devices/system/memory/auto_online_blocks.
type Policy int

const (
	// PolicyOffline leaves added blocks offline.
	PolicyOffline Policy = iota
	// PolicyOnline onlines added blocks into their default zone.
	PolicyOnline
	// PolicyOnlineKernel onlines added blocks into ZoneNormal.
	PolicyOnlineKernel
	// PolicyOnlineMovable onlines added blocks into ZoneMovable.
	PolicyOnlineMovable
)

var policyNames = [...]string{"offline", "online", "online_kernel", "online_movable"}

// String returns the sysfs word for p.
func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses a sysfs auto_online_blocks word (a trailing newline
// is allowed). Unknown words fail with an error wrapping syscall.EINVAL.
func ParsePolicy(s string) (Policy, error) {
	w := strings.TrimSuffix(s, "\n")
	for i, n := range policyNames {
		if w == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("mem: bad auto-online policy %q: %w", s, syscall.EINVAL)
}

// valid reports whether p is one of the Policy constants.
func (p Policy) valid() bool { return p >= PolicyOffline && p <= PolicyOnlineMovable }

// onlineKind is the OnlineKind an online-ing policy onlines with; ok is
// false for PolicyOffline and invalid policies.
func (p Policy) onlineKind() (k OnlineKind, ok bool) {
	switch p {
	case PolicyOnline:
		return OnlineDefault, true
	case PolicyOnlineKernel:
		return OnlineKernel, true
	case PolicyOnlineMovable:
		return OnlineMovable, true
	}
	return 0, false
}

// OnlineKind selects the zone an Online puts a block in: the words
// "online", "online_kernel" and "online_movable" written to a block's sysfs
// state file. Online refuses any other value with EINVAL.
type OnlineKind int

const (
	// OnlineDefault onlines into the block's default zone (the first of
	// its ValidZones): the word "online".
	OnlineDefault OnlineKind = iota
	// OnlineKernel onlines into ZoneNormal: "online_kernel".
	OnlineKernel
	// OnlineMovable onlines into ZoneMovable: "online_movable".
	OnlineMovable
)

var onlineKindNames = [...]string{"online", "online_kernel", "online_movable"}

// String returns the sysfs word for k.
func (k OnlineKind) String() string {
	if k.valid() {
		return onlineKindNames[k]
	}
	return fmt.Sprintf("OnlineKind(%d)", int(k))
}

// valid reports whether k is one of the OnlineKind constants.
func (k OnlineKind) valid() bool { return k >= 0 && int(k) < len(onlineKindNames) }

// ParseOnlineKind parses a word written to a block's sysfs state file to
// online it ("online", "online_kernel", "online_movable"; a trailing
// newline is allowed). Other words fail with an error wrapping
// syscall.EINVAL.
func ParseOnlineKind(s string) (OnlineKind, error) {
	w := strings.TrimSuffix(s, "\n")
	for i, n := range onlineKindNames {
		if w == n {
			return OnlineKind(i), nil
		}
	}
	return 0, fmt.Errorf("mem: bad online kind %q: %w", s, syscall.EINVAL)
}

// Zone is a memory zone of a node.
type Zone int

const (
	// ZoneNormal holds any allocation (kernel memory, slab pages).
	ZoneNormal Zone = iota
	// ZoneMovable holds only movable allocations (GFPMovable), so its
	// blocks can always be offlined once their pages are migrated.
	ZoneMovable
	nrZones
)

// String returns the kernel's zone name ("Normal", "Movable").
func (z Zone) String() string {
	switch z {
	case ZoneNormal:
		return "Normal"
	case ZoneMovable:
		return "Movable"
	}
	return fmt.Sprintf("Zone(%d)", int(z))
}

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

// Backing is where the memory of blocks comes from.
type Backing int

const (
	// BackingAnon maps blocks as private anonymous memory (the default).
	BackingAnon Backing = iota
	// BackingMemfd maps blocks from one sparse memfd.
	BackingMemfd
	// BackingFile maps blocks from one sparse file at Config.BackingPath.
	BackingFile
)

// String names the backing.
func (b Backing) String() string {
	switch b {
	case BackingAnon:
		return "anon"
	case BackingMemfd:
		return "memfd"
	case BackingFile:
		return "file"
	}
	return fmt.Sprintf("Backing(%d)", int(b))
}

// Config describes a System. Zero fields take the defaults noted.
type Config struct {
	// Nodes is the number of logical NUMA nodes (default 2, at most
	// MaxNodes).
	Nodes int
	// BlockSize is the memory block size in bytes: a power of two of at
	// least 1 MiB (default 128 MiB).
	BlockSize int64
	// InitialPerNode is the memory added to every node by New, a multiple
	// of BlockSize (default 2 blocks; negative: none). Like the kernel's
	// boot memory it is onlined into ZoneNormal whatever AutoOnline says.
	InitialPerNode int64
	// AutoOnline is the policy for memory added later (AddMemory,
	// Probe). Default PolicyOffline, like the kernel's default.
	AutoOnline Policy
	// MaxBlocks is the size of the reserved "physical" address space in
	// blocks (default: 1 TiB worth, at most 8192 blocks). The range,
	// MaxBlocks*BlockSize, must be below 16 TiB (2^32 pages).
	MaxBlocks int
	// Backing selects anonymous memory, a memfd or a file.
	Backing Backing
	// BackingPath is the file used with BackingFile (created if needed,
	// truncated to the range size; sparse).
	BackingPath string
	// Logger receives hotplug events at Debug level and problems at
	// Warn (default: slog.Default()).
	Logger *slog.Logger
}

// MemoryEvent is an event of the memory notifier chain.
type MemoryEvent int

const (
	// MemGoingOnline is sent before a block's pages are onlined; it may
	// fail, which cancels the online.
	MemGoingOnline MemoryEvent = iota
	// MemOnline is sent after a block is online.
	MemOnline
	// MemCancelOnline is sent to every subscriber when an online failed
	// after MemGoingOnline.
	MemCancelOnline
	// MemGoingOffline is sent after the block is isolated, before its
	// pages are migrated; it may fail, which cancels the offline.
	MemGoingOffline
	// MemOffline is sent after a block is offline.
	MemOffline
	// MemCancelOffline is sent to every subscriber when an offline failed
	// after the block was isolated.
	MemCancelOffline
)

var memEventNames = [...]string{"MEM_GOING_ONLINE", "MEM_ONLINE", "MEM_CANCEL_ONLINE",
	"MEM_GOING_OFFLINE", "MEM_OFFLINE", "MEM_CANCEL_OFFLINE"}

// String returns the kernel's name of e, e.g. "MEM_GOING_ONLINE".
func (e MemoryEvent) String() string {
	if e >= 0 && int(e) < len(memEventNames) {
		return memEventNames[e]
	}
	return fmt.Sprintf("MemoryEvent(%d)", int(e))
}

// ParseMemoryEvent parses a kernel event name such as "MEM_GOING_ONLINE".
func ParseMemoryEvent(s string) (MemoryEvent, error) {
	for i, n := range memEventNames {
		if s == n {
			return MemoryEvent(i), nil
		}
	}
	return 0, fmt.Errorf("mem: unknown memory event %q: %w", s, syscall.EINVAL)
}

// MemoryNotify is the argument of a memory event. Kernel: struct
// memory_notify.
type MemoryNotify struct {
	StartPFN, NrPages uint64 // pfn = physical address >> PageShift
	Block, Node       int
}

// NodeEvent is an event of the node notifier chain (Linux 6.17+).
type NodeEvent int

const (
	// NodeAddingFirstMemory: a node without memory is about to get some;
	// may fail, which cancels the online.
	NodeAddingFirstMemory NodeEvent = iota
	// NodeAddedFirstMemory: the node has memory (N_MEMORY) now.
	NodeAddedFirstMemory
	// NodeCancelAddingFirstMemory: the online that would have given the
	// node its first memory failed.
	NodeCancelAddingFirstMemory
	// NodeRemovingLastMemory: the node's last online block is going
	// offline; may fail, which cancels the offline.
	NodeRemovingLastMemory
	// NodeRemovedLastMemory: the node has no memory any more.
	NodeRemovedLastMemory
	// NodeCancelRemovingLastMemory: the offline of the last block failed.
	NodeCancelRemovingLastMemory
)

var nodeEventNames = [...]string{"NODE_ADDING_FIRST_MEMORY", "NODE_ADDED_FIRST_MEMORY",
	"NODE_CANCEL_ADDING_FIRST_MEMORY", "NODE_REMOVING_LAST_MEMORY",
	"NODE_REMOVED_LAST_MEMORY", "NODE_CANCEL_REMOVING_LAST_MEMORY"}

// String returns the kernel's name of e, e.g. "NODE_ADDING_FIRST_MEMORY".
func (e NodeEvent) String() string {
	if e >= 0 && int(e) < len(nodeEventNames) {
		return nodeEventNames[e]
	}
	return fmt.Sprintf("NodeEvent(%d)", int(e))
}

// ParseNodeEvent parses a kernel event name such as
// "NODE_ADDING_FIRST_MEMORY".
func ParseNodeEvent(s string) (NodeEvent, error) {
	for i, n := range nodeEventNames {
		if s == n {
			return NodeEvent(i), nil
		}
	}
	return 0, fmt.Errorf("mem: unknown node event %q: %w", s, syscall.EINVAL)
}

// GFP are allocation flags. Kernel: gfp_t.
type GFP uint32

const (
	// GFPMovable allows placement in ZoneMovable (tried first). Pages
	// allocated with it may only be offlined away if their owner
	// registers a Migrator or frees them; Offline waits (retries) for
	// such pages instead of failing. Kernel: __GFP_MOVABLE.
	GFPMovable GFP = 1 << iota
	// GFPThisNode forbids falling back to other nodes. Kernel:
	// __GFP_THISNODE.
	GFPThisNode
	// GFPZero zeroes the pages. Kernel: __GFP_ZERO.
	GFPZero

	gfpMask = GFPMovable | GFPThisNode | GFPZero
)

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

// Migrator is implemented by owners of movable pages. When a block is
// offlined, mem allocates a new page of the same order elsewhere and calls
// MigratePage: the owner copies the contents from old to new (mem does
// NOT copy: only the owner knows how to stop its writers), repoints its
// references to new, sets new's Page.Owner words if it uses them, and returns
// nil. mem then frees old and transfers the Migrator to new. On error mem
// frees new and retries later (Offline keeps trying until its context is
// cancelled). MigratePage can race with the owner's own FreePages of old
// (mem read the Migrator before the owner freed the page): the owner must
// serialise the two and return an error if it no longer owns old; mem then
// sees old free (it cannot be reallocated meanwhile: its block is
// isolated). MigratePage is called with device_hotplug_lock and
// mem_hotplug_lock held but no zone lock; it may allocate and free pages.
// Kernel: the migrate_page/move_to callbacks of movable_operations.
type Migrator interface {
	MigratePage(old, new uintptr, order int) error
}

// Stats is a snapshot of the page allocator's counters.
type Stats struct {
	// Zones has one entry per node and zone, node-major.
	Zones []ZoneStats
	// Allocs and Frees count AllocPages and FreePages calls that
	// succeeded.
	Allocs, Frees uint64
	// PresentBlocks, OnlineBlocks count blocks.
	PresentBlocks, OnlineBlocks int
}

// ZoneStats are the counters of one zone of one node, in pages.
type ZoneStats struct {
	Node int
	Zone Zone
	// Present: pages of the online blocks of this zone. Kernel:
	// present_pages.
	Present int64
	// Managed: pages given to the buddy allocator (equal to Present:
	// nothing is reserved). Kernel: managed_pages.
	Managed int64
	// Free: free pages, in the buddy allocator and on per-P lists.
	Free int64
	// PerPFree: the part of Free on per-P lists.
	PerPFree int64
}

func errnoErr(errno syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("mem: "+format+": %w", append(args, errno)...)
}
