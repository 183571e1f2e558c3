package slab

import (
	"context"
	"sync"
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
	"github.com/hotslab/hotslab/mem"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }

// env is a memory system and an allocator over it, with refused frees
// recorded instead of panicking.
type env struct {
	t    testing.TB
	sys  *mem.System
	a    *Allocator
	mu   sync.Mutex
	bad  []*InvalidFree
	ctx  context.Context
	size int64
}

func newEnv(t testing.TB, cfg mem.Config) *env {
	t.Helper()
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 2 << 20
	}
	if cfg.InitialPerNode == 0 {
		cfg.InitialPerNode = 2 * cfg.BlockSize
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 2
	}
	if cfg.MaxBlocks == 0 {
		cfg.MaxBlocks = 256
	}
	sys, err := mem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sys: sys, ctx: context.Background(), size: cfg.BlockSize}
	a, err := New(sys, &Options{OnInvalidFree: func(f *InvalidFree) {
		e.mu.Lock()
		e.bad = append(e.bad, f)
		e.mu.Unlock()
	}})
	if err != nil {
		sys.Close()
		t.Fatal(err)
	}
	e.a = a
	t.Cleanup(func() {
		a.Close()
		sys.Close()
	})
	return e
}

func (e *env) invalid() []*InvalidFree {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.bad
	e.bad = nil
	return out
}

func (e *env) cache(name string, size int, opts *CacheOptions) *Cache {
	e.t.Helper()
	c, err := e.a.NewCache(name, size, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// shrinkAll flushes and shrinks every cache.
func (e *env) shrinkAll() {
	e.a.slabMutex.Lock()
	e.a.flushAndShrinkAll()
	e.a.slabMutex.Unlock()
}
