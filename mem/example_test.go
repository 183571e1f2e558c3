//go:build linux

// Runnable examples of the mem API.

package mem_test

import (
	"context"
	"fmt"

	"github.com/hotslab/hotslab/mem"
)

func ExampleSystem_AddMemory() {
	s, err := mem.New(mem.Config{Nodes: 2, BlockSize: 1 << 20, InitialPerNode: 1 << 20, MaxBlocks: 16})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.SetAutoOnline(mem.PolicyOnlineMovable)
	ids, err := s.AddMemory(1, 2<<20)
	if err != nil {
		panic(err)
	}
	for _, id := range ids {
		bi, _ := s.Block(id)
		fmt.Println(bi.Index, bi.Node, bi.State, bi.Zone)
	}
	// Output:
	// 2 1 online Movable
	// 3 1 online Movable
}

func ExampleSystem_Offline() {
	s, _ := mem.New(mem.Config{Nodes: 1, BlockSize: 1 << 20, InitialPerNode: 2 << 20, MaxBlocks: 16})
	defer s.Close()
	unreg := s.RegisterMemoryNotifier("demo", 0, func(e mem.MemoryEvent, a mem.MemoryNotify) error {
		fmt.Println(e, "block", a.Block)
		return nil
	})
	defer unreg()
	ctx := context.Background()
	addr, _ := s.AllocPages(0, 0, 0) // unmovable
	err := s.Offline(ctx, s.BlockOf(addr))
	fmt.Println(err != nil)
	s.FreePages(addr, 0)
	fmt.Println(s.Offline(ctx, s.BlockOf(addr)))
	// Output:
	// MEM_GOING_OFFLINE block 1
	// MEM_CANCEL_OFFLINE block 1
	// true
	// MEM_GOING_OFFLINE block 1
	// MEM_OFFLINE block 1
	// <nil>
}

func ExampleSystem_AllocPages() {
	s, _ := mem.New(mem.Config{Nodes: 2, BlockSize: 1 << 20, MaxBlocks: 16})
	defer s.Close()
	addr, err := s.AllocPages(1, 2, mem.GFPZero|mem.GFPThisNode)
	if err != nil {
		panic(err)
	}
	pg := s.PageOf(addr)
	fmt.Println(s.PageNode(addr), pg.Order(), addr%(4*mem.PageSize) == 0)
	fmt.Println(s.FreePages(addr, 2))
	// Output:
	// 1 2 true
	// <nil>
}

func ExampleSystem_ReportFreePages() {
	// No background reporter here: the example reports by hand. (By
	// default it reports DefaultReportingDelay after memory is freed.)
	s, err := mem.New(mem.Config{Nodes: 1, BlockSize: 2 << 20, InitialPerNode: 2 << 20,
		ReportingDelay: -1})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	normal := func() mem.ZoneStats { return s.Stats().Zones[0] } // node 0, Normal

	fmt.Println("fresh:", normal().Free, "free pages,", normal().Reported, "reported")
	addr, _ := s.AllocPages(0, 9, 0) // 2 MiB, used, then freed: resident
	s.FreePages(addr, 9)
	fmt.Println("freed:", normal().Free, "free pages,", normal().Reported, "reported")

	n, err := s.ReportFreePages(context.Background())
	fmt.Println("reported", n, "bytes:", err)
	fmt.Println("now:", normal().Free, "free pages,", normal().Reported, "reported;",
		s.Stats().ReportedBytes, "bytes in all")

	// Reused, the memory faults back in as zeros; GFPZero costs nothing.
	addr, _ = s.AllocPages(0, 9, mem.GFPZero)
	fmt.Println("reused:", normal().Reported, "reported")
	s.FreePages(addr, 9)
	// Output:
	// fresh: 512 free pages, 512 reported
	// freed: 512 free pages, 0 reported
	// reported 2097152 bytes: <nil>
	// now: 512 free pages, 512 reported; 2097152 bytes in all
	// reused: 0 reported
}
