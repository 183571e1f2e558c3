package slab

import (
	"runtime"
	"testing"
	"unsafe"
)

// Create/destroy cycles reuse cache ids, so the id table (copied on every
// create and destroy) stays the size of the live caches.
func TestCacheIDsReused(t *testing.T) {
	e := newEnv(t, memCfg())
	base := len(*e.a.table.Load())
	for i := 0; i < 2000; i++ {
		c := e.cache("cycle", 64+8*(i%5), &CacheOptions{Flags: NoMerge})
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		c.Free(p)
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(*e.a.table.Load()); n > base+1 {
		t.Fatalf("id table grew from %d to %d entries over 2000 create/destroy cycles", base, n)
	}
}

// When a P's node changes, the emptied sheaves it keeps are retagged with
// the new node, so a full one later goes to the right barn under the
// right tag.
func TestSheavesRetaggedOnNodeChange(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e := newEnv(t, memCfg())
	c := e.cache("retag", 64, &CacheOptions{Flags: NoMerge})
	k := c.c
	objs := make([]unsafe.Pointer, 300)
	if err := c.AllocBulk(objs); err != nil {
		t.Fatal(err)
	}
	for _, p := range objs {
		c.Free(p)
	}
	e.shrinkAll()
	home := k.nodeOfP(0)
	e.drainNode(home)
	if k.nodeOfP(0) == home {
		t.Fatal("P 0's node did not change")
	}
	for p := range k.pcpu {
		pc := &k.pcpu[p]
		for _, sh := range []*objSheaf{pc.main, pc.spare} {
			if sh != nil && sh.node != k.nodeOfP(p) {
				t.Errorf("P %d keeps a sheaf tagged node %d, its node is %d", p, sh.node, k.nodeOfP(p))
			}
		}
	}
	// Fill main and spare and one more: a full sheaf goes to the barn of
	// the P's node, tagged with it.
	for i := range objs {
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = p
	}
	for _, p := range objs {
		c.Free(p)
	}
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			continue
		}
		cn.barnLock.Lock()
		for _, sh := range cn.full {
			if sh.node != n {
				t.Errorf("node %d's barn has a sheaf tagged %d", n, sh.node)
			}
		}
		cn.barnLock.Unlock()
	}
}

// Every sheaf array is preceded by a zero word: the assembly free reads
// objs[-1] of an empty sheaf as its top (fast_amd64.s, push).
func TestSheafArrayGuardWord(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("guard", 64, &CacheOptions{Flags: NoMerge})
	for _, capacity := range []int{1, 16, 128, 1000} {
		sh := c.c.newSheaf(capacity, 0)
		if len(sh.objs) != capacity || cap(sh.objs) != capacity {
			t.Fatalf("newSheaf(%d): len %d cap %d", capacity, len(sh.objs), cap(sh.objs))
		}
		if guard := *(*uintptr)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(sh.objs)), -8)); guard != 0 {
			t.Fatalf("newSheaf(%d): the word before the array is %#x", capacity, guard)
		}
	}
}
