//go:build linux

// Sizes and limits of the page allocator, where block memory comes from
// (Backing), and the Config of a System with its defaults.

package mem

import (
	"fmt"
	"log/slog"
	"time"
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

// DefaultReportingOrder is the smallest order of the free chunks the page
// reporter gives back to the OS unless Config.ReportingOrder says
// otherwise: 9, 2 MiB (a transparent huge page), or the largest order of a
// block if that is smaller. Kernel: page_reporting_order (pageblock_order).
const DefaultReportingOrder = 9

// DefaultReportingDelay is how long the background page reporter waits,
// after free memory that is not reported has appeared, before it reports
// it. Kernel: PAGE_REPORTING_DELAY (2 s).
const DefaultReportingDelay = 2 * time.Second

const (
	defaultNodes     = 2
	defaultBlockSize = 128 << 20
	defaultRange     = 1 << 40
	defaultMaxBlocks = 8192
)

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
	// ReportingOrder is the smallest order of the free chunks the page
	// reporter gives back to the OS (0: DefaultReportingOrder, or the
	// largest order of a block if that is smaller; at most that largest
	// order). See SetReportingOrder.
	ReportingOrder int
	// ReportingDelay is how long the background page reporter waits
	// after free memory that is not reported has appeared (a free that
	// leaves an unreported chunk of ReportingOrder or more) before it
	// reports it (0: DefaultReportingDelay; negative: no background
	// reporting — ReportFreePages still works). See SetReportingDelay.
	ReportingDelay time.Duration
}
