package slab

// Regression tests from an adversarial review of debug caches, hardening
// and fault injection (issue 13).

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/mem"
)

// R3-1: a constructor cache with Poison: the ctor's writes break the
// poison of every new object, so every allocation quarantines objects.
func TestRegression3CtorPoison(t *testing.T) {
	e, reports := newDebugEnv(t, "P,r3ctor")
	c := e.cache("r3ctor", 64, &CacheOptions{Ctor: func(p unsafe.Pointer) { *(*uint64)(p) = 42 }})
	p, err := c.Alloc()
	rs := reports()
	t.Logf("Alloc: p=%v err=%v reports=%d quarantined=%d", p, err, len(rs), c.Quarantined())
	if err != nil || len(rs) != 0 || c.Quarantined() != 0 {
		first := ""
		if len(rs) > 0 {
			first = rs[0].Kind
		}
		t.Fatalf("ctor+Poison: err=%v, %d reports (first %q), %d objects quarantined", err, len(rs), first, c.Quarantined())
	}
	if *(*uint64)(p) != 42 {
		t.Fatal("constructed state lost")
	}
	c.Free(p)
	q, _ := c.Alloc()
	if *(*uint64)(q) != 42 {
		t.Fatalf("constructed state lost after a free (poisoned): %#x", *(*uint64)(q))
	}
}

// R3-2: Z misses a write just past the object into the slot's padding
// (object size not a multiple of 8).
func TestRegression3RedZoneSlack(t *testing.T) {
	e, reports := newDebugEnv(t, "FZ,r3rz")
	c := e.cache("r3rz", 20, nil)
	p, _ := c.Alloc()
	*(*byte)(unsafe.Add(p, 20)) = 0x41 // one byte past the 20-byte object
	c.Free(p)
	if err := c.Validate(); err != nil {
		t.Log(err)
	}
	if rs := reports(); len(rs) == 0 {
		t.Fatal("a write one byte past a 20-byte object is not reported (Redzone overwritten)")
	}
}

// R3-3: GroupCache.AllocNode asks failslab twice per allocation
// (its own shouldFail, then Cache.Alloc's): interval 2 fails every one.
func TestRegression3FailslabGroupTwice(t *testing.T) {
	e := newEnv(t, memCfg())
	a := e.a
	c := e.cache("r3fs", 64, &CacheOptions{Flags: NoMerge | Account})
	g, _ := a.Memcg().Root().Create("r3")
	fs := a.Failslab()
	fs.SetVerbose(0)
	fs.SetTimes(-1)
	fs.SetInterval(2)
	fs.SetProbability(100)
	plain, group := 0, 0
	var keep []unsafe.Pointer
	for i := 0; i < 10; i++ {
		if p, err := c.Alloc(); err != nil {
			plain++
		} else {
			keep = append(keep, p)
		}
	}
	for i := 0; i < 10; i++ {
		if p, err := c.In(g).Alloc(); err != nil {
			group++
		} else {
			keep = append(keep, p)
		}
	}
	fs.SetProbability(0)
	for _, p := range keep {
		c.Free(p)
	}
	t.Logf("interval 2: %d/10 plain allocations failed, %d/10 group allocations failed", plain, group)
	if group != plain {
		t.Fatalf("a group allocation is asked %s: %d/10 failed vs %d/10 plain", "twice", group, plain)
	}
}

// R3-4: failslab logs to slog.Default, not Options.Logger (the Attr is
// made before opts.Logger is read).
func TestRegression3FailslabLogger(t *testing.T) {
	sys, err := mem.New(memCfg())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	a, err := New(sys, &Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(); sys.Close() }()
	c, _ := a.NewCache("r3log", 64, &CacheOptions{Flags: NoMerge})
	fs := a.Failslab()
	fs.SetVerbose(1)
	fs.SetTimes(1)
	fs.SetProbability(100)
	if _, err := c.Alloc(); err == nil {
		t.Fatal("not injected")
	}
	if !strings.Contains(buf.String(), "FAULT_INJECTION") {
		t.Fatalf("the failslab message did not reach Options.Logger (got %q)", buf.String())
	}
}

// R3-5: a duplicate in a FreeBulk batch of a debug cache is a double
// free the debug cache does not report (Free(p);Free(p) is reported).
func TestRegression3DebugFreeBulkDup(t *testing.T) {
	e, reports := newDebugEnv(t, "FZP,r3fb")
	c := e.cache("r3fb", 64, nil)
	p, _ := c.Alloc()
	c.Free(p)
	c.Free(p)
	if rs := reports(); len(rs) != 1 {
		t.Fatalf("Free;Free: %d reports", len(rs))
	}
	e.invalid()
	q, _ := c.Alloc()
	c.FreeBulk([]unsafe.Pointer{q, q})
	rs := reports()
	t.Logf("FreeBulk{q,q}: %d debug reports, %d invalid frees", len(rs), len(e.invalid()))
	if len(rs) != 1 {
		t.Fatalf("FreeBulk{q, q} on a debug cache: %d debug reports, want 1 (Object already free)", len(rs))
	}
}

// R3-6: Sheaf.Refill under InitOnAlloc hands out objects straight from
// the slabs, with their last user's data.
func TestRegression3InitOnAllocSheafRefill(t *testing.T) {
	e := newHardened(t, Options{InitOnAlloc: true})
	c := e.cache("r3ioa", 128, &CacheOptions{Flags: NoMerge})
	objs := make([]unsafe.Pointer, 200)
	for i := range objs {
		objs[i], _ = c.Alloc()
		dirty(objs[i], 128)
	}
	for _, p := range objs {
		c.Free(p)
	}
	c.Shrink() // the dirty objects go back to their slabs
	sh, err := c.PrefillSheaf(1)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Return()
	if err := sh.Refill(200); err != nil {
		t.Fatal(err)
	}
	dirtyN := 0
	for p := sh.Alloc(); p != nil; p = sh.Alloc() {
		if !isZero(p, 128) {
			dirtyN++
		}
		c.Free(p)
	}
	if dirtyN > 0 {
		t.Fatalf("InitOnAlloc: %d objects from Sheaf.Refill handed out with their last user's data", dirtyN)
	}
}

// R3-7: the pprof profile with no live objects, and with inlined frames.
func TestRegression3ProfileEmpty(t *testing.T) {
	e, _ := newDebugEnv(t, "U,r3p-*")
	c := e.cache("r3p-64", 64, nil)
	path := filepath.Join(t.TempDir(), "empty.pb.gz")
	f, _ := os.Create(path)
	if err := c.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "tool", "pprof", "-raw", path).CombinedOutput()
	t.Logf("go tool pprof -raw on an empty profile: err=%v\n%s", err, out)
	if err != nil {
		t.Fatal(err)
	}
}

func r3inl(c *Cache) unsafe.Pointer { p, _ := c.Alloc(); return p } // inlinable

//go:noinline
func r3outer(c *Cache) unsafe.Pointer { return r3inl(c) }

func TestRegression3ProfileInlined(t *testing.T) {
	e, _ := newDebugEnv(t, "U,r3q-*")
	c := e.cache("r3q-64", 64, nil)
	p := r3outer(c)
	defer c.Free(p)
	path := filepath.Join(t.TempDir(), "inl.pb.gz")
	f, _ := os.Create(path)
	if err := c.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "tool", "pprof", "-traces", path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("-traces:\n%s", out)
	if n := strings.Count(string(out), "r3outer"); n != 1 {
		t.Fatalf("r3outer appears %d times in the one stack", n)
	}
}

// R3-8: debugFor: a later global block overrides a block that names the
// cache (doc: "those of the last rule that names it"; the kernel's
// kmem_cache_flags: the first block naming it, else the global flags).
func TestRegression3DebugForPrecedence(t *testing.T) {
	rules, err := ParseDebugSpec("U,r3d;FZ")
	if err != nil {
		t.Fatal(err)
	}
	a := &Allocator{debugRules: rules}
	if got := a.debugFor("r3d"); got != StoreUser {
		t.Fatalf(`"U,r3d;FZ": r3d gets %v, want U (StoreUser=%v)`, got, StoreUser)
	}
}

// R3-11: the debug free's state check is outside list_lock: two racing
// frees of one object (with a third free of a neighbour between) both
// pass it and push the object twice.
func TestRegression3DebugRacingDoubleFree(t *testing.T) {
	e, reports := newDebugEnv(t, "FZPU,r3race")
	c := e.cache("r3race", 64, nil)
	keep := make([]unsafe.Pointer, 4)
	for i := range keep {
		keep[i], _ = c.AllocNode(0, ThisNode) // the slab stays
	}
	for i := 0; i < 20000; i++ {
		p, _ := c.AllocNode(0, ThisNode)
		q, _ := c.AllocNode(0, ThisNode)
		done := make(chan bool)
		go func() { c.Free(p); done <- true }()
		go func() { c.Free(q); done <- true }()
		go func() { c.Free(p); done <- true }()
		<-done
		<-done
		<-done
		if err := c.Validate(); err != nil {
			t.Fatalf("iteration %d: %v (reports %d, invalid %d)", i, err, len(reports()), len(e.invalid()))
		}
		reports()
		e.invalid()
	}
	for _, p := range keep {
		c.Free(p)
	}
}

func TestRegression3RandomOrderFallback(t *testing.T) {
	e := newHardened(t, Options{RandomOrder: true, Debug: "FZP,r3ro-dbg"})
	fp := e.sys.FailPageAlloc()
	fp.SetVerbose(0)
	fp.SetTimes(-1)
	fp.SetProbability(100) // every order >= 1 fails: min-order slabs
	defer fp.SetProbability(0)
	for _, spec := range []struct {
		name string
		size int
		fl   Flags
	}{{"r3ro-a", 700, NoMerge | Account}, {"r3ro-b", 3000, NoMerge}, {"r3ro-dbg", 1000, 0}, {"r3ro-c", 5000, NoMerge}} {
		c := e.cache(spec.name, spec.size, &CacheOptions{Flags: spec.fl})
		seen := map[unsafe.Pointer]bool{}
		var objs []unsafe.Pointer
		for i := 0; i < 300; i++ {
			p, err := c.AllocNode(0, ThisNode)
			if err != nil {
				if spec.size == 5000 {
					break
				}
				t.Fatal(spec.name, err)
			}
			if seen[p] {
				t.Fatalf("%s: object handed out twice", spec.name)
			}
			seen[p] = true
			objs = append(objs, p)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, p := range objs {
			c.Free(p)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d objects, fallbacks %d", spec.name, len(objs), c.Stats().Counters[OrderFallback])
	}
	if bad := e.invalid(); len(bad) > 0 {
		t.Fatal(bad[0])
	}
}
