package slab

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// newDebugEnv is an allocator whose debug reports are recorded.
func newDebugEnv(t testing.TB, spec string) (*env, func() []*DebugReport) {
	t.Helper()
	var mu sync.Mutex
	var reports []*DebugReport
	e := newHardened(t, Options{Debug: spec, OnDebugReport: func(r *DebugReport) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	}})
	return e, func() []*DebugReport {
		mu.Lock()
		defer mu.Unlock()
		out := reports
		reports = nil
		return out
	}
}

// F catches the double free the fast path cannot see (Free(p); Free(q);
// Free(p)); Z a write past the object; P a write after free; each report
// in the kernel's shape, the damaged object quarantined, the cache still
// working; U's tracks name the allocating and freeing functions.
func TestDebugCatches(t *testing.T) {
	e, reports := newDebugEnv(t, "FZPU,dbg*")
	c := e.cache("dbg-64", 64, nil)
	if c.DebugFlags() != ConsistencyChecks|RedZone|Poison|StoreUser {
		t.Fatalf("flags %v", c.DebugFlags())
	}
	p, _ := c.Alloc()
	q, _ := c.Alloc()
	c.Free(p)
	c.Free(q)
	c.Free(p)
	rs := reports()
	if len(rs) != 1 || rs[0].Kind != "Object already free" || rs[0].Addr != uintptr(p) {
		t.Fatalf("Free(p); Free(q); Free(p): %v", rs)
	}
	if !strings.Contains(rs[0].Text, "BUG dbg-64 (Not tainted): Object already free") ||
		!strings.Contains(rs[0].Text, "Allocated in ") || !strings.Contains(rs[0].Text, "Freed in ") ||
		!strings.Contains(rs[0].Text, "TestDebugCatches") {
		t.Errorf("report:\n%s", rs[0].Text)
	}
	if bad := e.invalid(); len(bad) != 1 {
		t.Errorf("the double free was not refused: %v", bad)
	}
	// Z: one byte past the object.
	r, _ := c.Alloc()
	*(*byte)(unsafe.Add(r, 64)) = 0x41
	c.Free(r)
	if rs := reports(); len(rs) != 1 || rs[0].Kind != "Redzone overwritten" {
		t.Fatalf("write past the object: %v", rs)
	}
	if c.Quarantined() != 1 {
		t.Errorf("quarantined %d", c.Quarantined())
	}
	// P: a write after free, found when the object is allocated again.
	s, _ := c.Alloc()
	c.Free(s)
	*(*byte)(unsafe.Add(s, 10)) = 0x42 // use after free
	var got []unsafe.Pointer
	for i := 0; i < 200; i++ {
		x, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, x)
	}
	rs = reports()
	if len(rs) != 1 || !strings.HasPrefix(rs[0].Kind, "Poison overwritten") || rs[0].Addr != uintptr(s) {
		t.Fatalf("use after free: %v", rs)
	}
	for _, x := range got {
		if x == s {
			t.Fatal("the damaged object was handed out")
		}
		if *(*byte)(x) != poisonFree {
			t.Fatal("a debug object is not poisoned when handed out")
		}
		c.Free(x)
	}
	if c.Quarantined() != 2 || len(reports()) != 0 {
		t.Errorf("quarantined %d", c.Quarantined())
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Debug caches have no per-P layers.
	if _, err := c.NewMagazine(0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("magazine of a debug cache: %v", err)
	}
	// A cache the spec does not name has no debug flags.
	if d := e.cache("plain-64", 64, &CacheOptions{Flags: NoMerge}); d.DebugFlags() != 0 {
		t.Errorf("plain-64 flags %v", d.DebugFlags())
	}
}

func TestParseDebugSpec(t *testing.T) {
	for spec, want := range map[string][]DebugRule{
		"":             nil,
		"FZPU":         {{Flags: ConsistencyChecks | RedZone | Poison | StoreUser}},
		"p,kmalloc-64": {{Flags: Poison, Caches: []string{"kmalloc-64"}}},
		",dentry":      {{Flags: ConsistencyChecks | RedZone | Poison | StoreUser, Caches: []string{"dentry"}}},
		"FZ,a*,b;U,c":  {{Flags: ConsistencyChecks | RedZone, Caches: []string{"a*", "b"}}, {Flags: StoreUser, Caches: []string{"c"}}},
		"-":            {{}},
		"T":            {{Flags: Trace}},
	} {
		got, err := ParseDebugSpec(spec)
		if err != nil || len(got) != len(want) {
			t.Errorf("%q: %v %v", spec, got, err)
			continue
		}
		for i := range got {
			if got[i].Flags != want[i].Flags || strings.Join(got[i].Caches, ",") != strings.Join(want[i].Caches, ",") {
				t.Errorf("%q: %v, want %v", spec, got, want)
			}
		}
	}
	for _, bad := range []string{"X", "F,", "F,a b", "Q,x"} {
		if _, err := ParseDebugSpec(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

//go:noinline
func allocHere(c *Cache, n int) []unsafe.Pointer {
	var out []unsafe.Pointer
	for i := 0; i < n; i++ {
		p, _ := c.Alloc()
		out = append(out, p)
	}
	return out
}

//go:noinline
func allocThere(c *Cache, n int) []unsafe.Pointer { return allocHere(c, n) }

// The live objects of a StoreUser cache by allocation site: alloc_calls
// and a pprof profile that go tool pprof reads.
func TestLiveObjectProfile(t *testing.T) {
	e, _ := newDebugEnv(t, "U,prof-*")
	c := e.cache("prof-100", 100, nil)
	a := allocHere(c, 30)
	b := allocThere(c, 12)
	calls := c.Calls(false)
	lines := strings.Split(strings.TrimSpace(calls), "\n")
	if len(lines) != 1 || !strings.Contains(calls, "allocHere") || !strings.HasPrefix(strings.TrimSpace(lines[0]), "42 ") {
		t.Errorf("alloc_calls:\n%s", calls)
	}
	for _, p := range b {
		c.Free(p)
	}
	if fc := c.Calls(true); !strings.Contains(fc, "TestLiveObjectProfile") {
		t.Errorf("free_calls:\n%s", fc)
	}
	path := filepath.Join(t.TempDir(), "heap.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.a.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-unit=B", "-sample_index=inuse_space", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "allocHere") || !strings.Contains(string(out), "3000B") {
		t.Errorf("pprof -top:\n%s", out)
	}
	for _, p := range a {
		c.Free(p)
	}
}

// Validate of a debug cache checks every object of its partial slabs.
func TestValidateDebug(t *testing.T) {
	e, _ := newDebugEnv(t, "FZP,vd")
	c := e.cache("vd", 64, nil)
	objs := allocHere(c, 10)
	c.Free(objs[3])
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	*(*byte)(unsafe.Add(objs[3], 5)) = 1 // a free object written
	if err := c.Validate(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "Poison overwritten") {
		t.Fatalf("a written free object: %v", err)
	}
	*(*byte)(unsafe.Add(objs[3], 5)) = poisonFree
	*(*byte)(unsafe.Add(objs[4], 64)) = 1 // an allocated object's red zone
	if err := c.Validate(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "Redzone overwritten") {
		t.Fatalf("a red zone written: %v", err)
	}
	*(*byte)(unsafe.Add(objs[4], 64)) = 0xcc
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, p := range objs {
		if i != 3 {
			c.Free(p)
		}
	}
}

// FuzzParseDebugSpec: a spec parses to rules whose flags are debug flags
// and whose names are cache names, or to EINVAL; it never panics.
func FuzzParseDebugSpec(f *testing.F) {
	for _, s := range []string{"FZPU", "P,kmalloc-64", "FZ,a*,b;U,c", "-", "", ";", "X", "F,", "t,x*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		rules, err := ParseDebugSpec(spec)
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("%q: %v", spec, err)
			}
			return
		}
		for _, r := range rules {
			if r.Flags&^debugFlags != 0 {
				t.Fatalf("%q: flags %#x", spec, r.Flags)
			}
			for _, c := range r.Caches {
				if c == "" || strings.ContainsAny(c, ",;") {
					t.Fatalf("%q: cache %q", spec, c)
				}
			}
		}
	})
}

// Validate of a debug cache reaches full slabs too.
func TestValidateDebugFullSlab(t *testing.T) {
	e, _ := newDebugEnv(t, "FZ,vf")
	c := e.cache("vf", 1024, nil)
	objs := allocHere(c, 64) // several full slabs
	*(*byte)(unsafe.Add(objs[40], 1024)) = 7
	if err := c.Validate(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "Redzone overwritten") {
		t.Fatalf("a red zone written in a full slab: %v", err)
	}
	*(*byte)(unsafe.Add(objs[40], 1024)) = 0xcc
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range objs {
		c.Free(p)
	}
}
