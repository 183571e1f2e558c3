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
