package slab

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// nodeBlocks returns the present blocks of node n.
func (e *env) nodeBlocks(n int) []int {
	var out []int
	for _, b := range e.sys.Blocks() {
		if b.Node == n {
			out = append(out, b.Index)
		}
	}
	return out
}

// drainNode takes all memory of node n away (offline + remove).
func (e *env) drainNode(n int) {
	e.t.Helper()
	for _, b := range e.nodeBlocks(n) {
		if err := e.sys.Offline(e.ctx, b); err != nil {
			e.t.Fatalf("offline block %d: %v", b, err)
		}
		if err := e.sys.RemoveMemory(b); err != nil {
			e.t.Fatalf("remove block %d: %v", b, err)
		}
	}
	if e.sys.NodeHasMemory(n) {
		e.t.Fatalf("node %d still has memory", n)
	}
}

func TestAllocNode(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("numa", 128, &CacheOptions{Flags: NoMerge})
	for n := 0; n < 2; n++ {
		for _, gfp := range []GFP{0, ThisNode} {
			p, err := c.AllocNode(n, gfp)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.sys.PageNode(uintptr(p)); got != n {
				t.Fatalf("AllocNode(%d, %d) gave node %d", n, gfp, got)
			}
			c.Free(p) // remote or local, it goes home
		}
	}
	for _, n := range []int{-2, 2, 99} {
		if _, err := c.AllocNode(n, 0); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("AllocNode(%d): %v", n, err)
		}
	}
	c.Shrink()
	e.drainNode(1)
	if _, err := c.AllocNode(1, ThisNode); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("strict alloc on a memoryless node: %v", err)
	}
	p, err := c.AllocNode(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.sys.PageNode(uintptr(p)); got != 0 {
		t.Fatalf("fallback gave node %d", got)
	}
	c.Free(p)
	// Local allocations on every P now come from node 0.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				p, err := c.Alloc()
				if err != nil {
					t.Error(err)
					return
				}
				if n := e.sys.PageNode(uintptr(p)); n != 0 {
					t.Errorf("object on node %d", n)
				}
				c.Free(p)
			}
		}()
	}
	wg.Wait()
}

// Going offline flushes sheaves and frees empty slabs, so a block whose
// objects were all freed goes offline; a block with a live object fails
// with EBUSY and stays online, nothing lost.
func TestOfflineFlushAndBusy(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("blocky", 256, &CacheOptions{Flags: NoMerge})
	target := e.nodeBlocks(0)[0]
	var objs, inTarget []unsafe.Pointer
	for len(inTarget) == 0 || len(objs) < 100 {
		p, err := c.AllocNode(0, ThisNode)
		if err != nil {
			t.Fatal(err)
		}
		fill(p, 256, 0xab)
		objs = append(objs, p)
		if e.sys.BlockOf(uintptr(p)) == target {
			inTarget = append(inTarget, p)
		}
	}
	err := e.sys.Offline(e.ctx, target)
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("offline with live objects: %v", err)
	}
	if b, _ := e.sys.Block(target); b.State != mem.BlockOnline {
		t.Fatalf("block state %v after failed offline", b.State)
	}
	for _, p := range objs {
		check(t, p, 256, 0xab) // nothing lost
	}
	for _, p := range objs {
		c.Free(p)
	}
	// The freed objects sit in sheaves and barns; the notifier flushes them.
	if err := e.sys.Offline(e.ctx, target); err != nil {
		t.Fatalf("offline after free: %v", err)
	}
	st := c.Stats()
	if st.ActiveObjects() != 0 {
		t.Fatalf("%d active objects after offline", st.ActiveObjects())
	}
	if err := e.sys.Online(e.ctx, target, mem.OnlineDefault); err != nil {
		t.Fatal(err)
	}
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p)
}

// The race the kernel fixed in 2021: a cache created while a node is
// between its first-memory notifier and the node-mask update must still
// get that node's structure.
func TestCacheCreatedDuringNodeOnline(t *testing.T) {
	e := newEnv(t, memCfg())
	e.drainNode(1)
	var late *Cache
	var sawMemory bool
	unreg := e.sys.RegisterNodeNotifier("test-late", 0, func(ev mem.NodeEvent, nid int) error {
		if ev != mem.NodeAddingFirstMemory || nid != 1 {
			return nil
		}
		sawMemory = e.sys.NodeHasMemory(1)
		done := make(chan error)
		go func() { // another task creates a cache right now
			var err error
			late, err = e.a.NewCache("late", 72, &CacheOptions{Flags: NoMerge})
			done <- err
		}()
		return <-done
	})
	defer unreg()
	ids, err := e.sys.AddMemory(1, e.size)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := e.sys.Block(ids[0]); b.State != mem.BlockOnline {
		if err := e.sys.Online(e.ctx, ids[0], mem.OnlineDefault); err != nil {
			t.Fatal(err)
		}
	}
	if late == nil {
		t.Fatal("notifier did not run")
	}
	if sawMemory {
		t.Fatal("node had N_MEMORY already: the window was not forced")
	}
	if late.c.nodes[1].Load() == nil {
		t.Fatal("cache created during onlining has no structure for the node")
	}
	p, err := late.AllocNode(1, ThisNode)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.sys.PageNode(uintptr(p)); n != 1 {
		t.Fatalf("object on node %d", n)
	}
	late.Free(p)
}

// A per-node structure that cannot be set up cancels the online with
// ENOMEM; nothing changes.
func TestNodeInitFailureCancelsOnline(t *testing.T) {
	e := newEnv(t, memCfg())
	e.drainNode(1)
	e.sys.SetAutoOnline(mem.PolicyOffline)
	ids, err := e.sys.AddMemory(1, e.size)
	if err != nil {
		t.Fatal(err)
	}
	e.a.failNodeInit.Store(2)
	err = e.sys.Online(e.ctx, ids[0], mem.OnlineDefault)
	if !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("online with failing slab notifier: %v", err)
	}
	if b, _ := e.sys.Block(ids[0]); b.State != mem.BlockOffline || e.sys.NodeHasMemory(1) {
		t.Fatalf("state %v, node memory %v", b.State, e.sys.NodeHasMemory(1))
	}
	e.a.failNodeInit.Store(0)
	if err := e.sys.Online(e.ctx, ids[0], mem.OnlineDefault); err != nil {
		t.Fatal(err)
	}
	c := e.cache("after", 64, &CacheOptions{Flags: NoMerge})
	p, err := c.AllocNode(1, ThisNode)
	if err != nil {
		t.Fatal(err)
	}
	c.Free(p)
}

// Shrink racing with offline/online of the blocks the cache lives in.
func TestShrinkConcurrentWithOffline(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("shrinky", 192, &CacheOptions{Flags: NoMerge})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var objs []unsafe.Pointer
			for i := 0; ctx.Err() == nil; i++ {
				if g == 0 {
					c.Shrink()
					continue
				}
				p, err := c.Alloc()
				if err != nil {
					continue // all blocks offline for a moment
				}
				fill(p, 192, byte(g))
				objs = append(objs, p)
				if len(objs) > 64 {
					for _, p := range objs {
						check(t, p, 192, byte(g))
						c.Free(p)
					}
					objs = objs[:0]
				}
			}
			for _, p := range objs {
				c.Free(p)
			}
		}(g)
	}
	blocks := e.nodeBlocks(0)
	cycles := 40
	if testing.Short() {
		cycles = 10
	}
	okOff := 0
	for i := 0; i < cycles; i++ {
		b := blocks[i%len(blocks)]
		err := e.sys.Offline(e.ctx, b)
		switch {
		case err == nil:
			okOff++
			if err := e.sys.Online(e.ctx, b, mem.OnlineDefault); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, syscall.EBUSY):
		default:
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	c.Shrink()
	if st := c.Stats(); st.Slabs() != 0 {
		t.Fatalf("%d slabs left", st.Slabs())
	}
	t.Logf("%d of %d offlines succeeded", okOff, cycles)
}

// TestRemoteFreesGoHomeBySheaf: frees of another node's objects collect in
// the P's remote sheaf; a full one goes whole to its node's barn, where
// that node's Ps allocate from it; a double free at the top of the remote
// sheaf is caught; shrink sends everything back to the slabs.
func TestRemoteFreesGoHomeBySheaf(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e := newEnv(t, memCfg())
	c := e.cache("remote", 64, &CacheOptions{Flags: NoMerge})
	k := c.c
	local := k.nodeOfP(0)
	remote := 1 - local
	n := 2*k.sheafCap + 5
	objs := make([]unsafe.Pointer, n)
	for i := range objs {
		p, err := c.AllocNode(remote, ThisNode)
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = p
	}
	before := c.Stats().Counters
	for _, p := range objs {
		c.Free(p)
	}
	st := c.Stats()
	if got := st.Counters[FreeRemote] - before[FreeRemote]; got != uint64(n) {
		t.Errorf("free_remote counted %d of %d remote frees", got, n)
	}
	if got := st.Counters[BarnPut] - before[BarnPut]; got != 2 {
		t.Errorf("barn_put %d, want the 2 full remote sheaves", got)
	}
	cn := k.nodes[remote].Load()
	cn.barnLock.Lock()
	full := len(cn.full)
	for _, sh := range cn.full {
		for _, o := range sh.objs[:sh.n] {
			if e.sys.PageNode(o) != remote {
				t.Errorf("object %#x of node %d in node %d's barn", o, e.sys.PageNode(o), remote)
			}
		}
	}
	cn.barnLock.Unlock()
	if full != 2 {
		t.Errorf("node %d's barn has %d full sheaves, want 2", remote, full)
	}
	// The last object is on top of the P's remote sheaf.
	c.Free(objs[n-1])
	if bad := e.invalid(); len(bad) != 1 || !strings.HasPrefix(bad[0].Fault, "double free") {
		t.Fatalf("double free on the remote sheaf: %+v", bad)
	}
	c.Shrink()
	for _, ns := range c.Stats().Nodes {
		if ns.Slabs != 0 || ns.Free != 0 {
			t.Errorf("node %d after shrink: %+v", ns.Node, ns)
		}
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
}
