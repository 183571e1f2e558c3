//go:build linux

// Counters: Stats and ZoneStats, a snapshot of the page allocator.

package mem

// Stats is a snapshot of the page allocator's counters.
type Stats struct {
	// Zones has one entry per node and zone, node-major.
	Zones []ZoneStats
	// Allocs and Frees count AllocPages and FreePages calls that
	// succeeded.
	Allocs, Frees uint64
	// PresentBlocks, OnlineBlocks count blocks.
	PresentBlocks, OnlineBlocks int
	// ReportedBytes counts the bytes of free memory the page reporter
	// (ReportFreePages and the background reporter) gave back to the OS
	// since New: a running total, as RSS goes down by it.
	ReportedBytes uint64
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
	// Reported: the part of Free in reported chunks — memory given back
	// to the OS (or never touched since the block was onlined), not
	// resident, reading as zeros when reused.
	Reported int64
}

// Stats returns the page allocator's counters. Per-P counts are read
// without stopping their owners, so they are exact only when no
// allocation runs. Kernel: /proc/zoneinfo.
func (s *System) Stats() Stats {
	pz, a, f := s.pcpCounts()
	st := Stats{Allocs: a + s.slowAllocs.Load(), Frees: f + s.slowFrees.Load(),
		ReportedBytes: s.reportedBytes.Load()}
	for i := range s.zones {
		z := &s.zones[i]
		m := z.managed.Load()
		// Chunks the page reporter holds are free too.
		st.Zones = append(st.Zones, ZoneStats{Node: z.node, Zone: z.kind, Present: m, Managed: m,
			Free: z.nrFree.Load() + z.nrReporting.Load() + pz[i], PerPFree: pz[i],
			Reported: z.nrReported.Load()})
		st.OnlineBlocks += int(z.nrBlk.Load())
	}
	for i := range s.blocks {
		if s.blocks[i].Load() != nil {
			st.PresentBlocks++
		}
	}
	return st
}
