package slab

import "github.com/hotslab/hotslab/mem"

func memCfg() mem.Config {
	return mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 256}
}
