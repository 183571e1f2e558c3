package slab_test

import (
	"sync"
	"testing"

	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// The black-box tests' environment (package slab_test: the public API
// only, as a new user sees it): a System and an Allocator whose refused
// frees are recorded.

// bbEnv is a System and an Allocator whose refused frees are recorded.
type bbEnv struct {
	sys *mem.System
	a   *slab.Allocator
	mu  sync.Mutex
	bad []*slab.InvalidFree
}

func newBB(t *testing.T, cfg mem.Config) *bbEnv {
	t.Helper()
	if cfg.Nodes == 0 {
		cfg = mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 64}
	}
	sys, err := mem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &bbEnv{sys: sys}
	e.a, err = slab.New(sys, &slab.Options{OnInvalidFree: func(f *slab.InvalidFree) {
		e.mu.Lock()
		e.bad = append(e.bad, f)
		e.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.a.Close()
		sys.Close()
	})
	return e
}

func (e *bbEnv) refused() []*slab.InvalidFree {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.bad
	e.bad = nil
	return b
}

func mustCache(t *testing.T, a *slab.Allocator, name string, size int, o *slab.CacheOptions) *slab.Cache {
	t.Helper()
	c, err := a.NewCache(name, size, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
