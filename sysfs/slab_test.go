package sysfs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
	"github.com/hotslab/hotslab/sysfs"
)

type slabEnv struct {
	sys  *mem.System
	a    *slab.Allocator
	tree *sysfs.Tree
}

func newSlabEnv(t *testing.T) *slabEnv { return newSlabEnvOpts(t, nil) }

// newSlabEnvOpts is a two-node System, an Allocator made with opts and a
// tree holding its slab files, all released when the test ends.
func newSlabEnvOpts(t *testing.T, opts *slab.Options) *slabEnv {
	t.Helper()
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 32})
	if err != nil {
		t.Fatal(err)
	}
	a, err := slab.New(sys, opts)
	if err != nil {
		t.Fatal(err)
	}
	tree := sysfs.NewTree()
	stop, err := sysfs.AddSlab(tree, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		a.Close()
		sys.Close()
	})
	return &slabEnv{sys: sys, a: a, tree: tree}
}

func readNode(t *testing.T, tree *sysfs.Tree, path string) string {
	t.Helper()
	n := tree.Root().Walk(path)
	if n == nil {
		t.Fatalf("%s: missing", path)
	}
	s, err := n.Read()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s
}

func TestSlabFiles(t *testing.T) {
	e := newSlabEnv(t)
	c, err := e.a.NewCache("dentry-like", 192, &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		t.Fatal(err)
	}
	alias, err := e.a.NewCache("session", 60, nil) // merges into kmalloc-64
	if err != nil {
		t.Fatal(err)
	}
	var objs []unsafe.Pointer
	for range 100 {
		p, _ := c.AllocNode(1, slab.ThisNode)
		objs = append(objs, p)
	}
	d := "sys/kernel/slab/dentry-like/"
	for name, want := range map[string]string{
		d + "slab_size":                    "192\n",
		d + "object_size":                  "192\n",
		d + "aliases":                      "0\n",
		d + "reclaim_account":              "0\n",
		"sys/kernel/slab/:0000064/aliases": "1\n",
	} {
		if got := readNode(t, e.tree, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"kmalloc-64", "session"} {
		l := e.tree.Root().Walk("sys/kernel/slab/" + name)
		if l == nil || l.Kind() != sysfs.KindLink || l.Target() != ":0000064" {
			t.Errorf("%s: not a link to :0000064", name)
		}
	}
	// objects: in use (objects cached in sheaves count, as SLUB's do),
	// all on node 1, in the kernel's "total N1=n" form.
	var total, n1 int
	if _, err := fmt.Sscanf(readNode(t, e.tree, d+"objects"), "%d N1=%d\n", &total, &n1); err != nil || total < 100 || n1 != total {
		t.Errorf("objects %q: %v", readNode(t, e.tree, d+"objects"), err)
	}
	si := readNode(t, e.tree, "proc/slabinfo")
	if !strings.HasPrefix(si, "slabinfo - version: 2.1\n") || !strings.Contains(si, "\ndentry-like ") {
		t.Errorf("slabinfo:\n%s", si)
	}
	// shrink: garbage refused, 1 shrinks.
	sh := e.tree.Root().Walk(d + "shrink")
	if err := sh.Write(context.Background(), "bogus"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("shrink <- bogus: %v", err)
	}
	if err := sh.Write(context.Background(), "1\n"); err != nil {
		t.Fatal(err)
	}
	if err := e.tree.Root().Walk(d+"validate").Write(context.Background(), "1"); err != nil {
		t.Fatalf("validate a healthy cache: %v", err)
	}
	// Destroy: the directory and the alias's link go.
	if err := alias.Destroy(); err != nil {
		t.Fatal(err)
	}
	if e.tree.Root().Walk("sys/kernel/slab/session") != nil {
		t.Error("destroyed alias's link stays")
	}
	if got := readNode(t, e.tree, "sys/kernel/slab/:0000064/aliases"); got != "0\n" {
		t.Errorf("aliases after the alias's destroy: %q", got)
	}
	for _, p := range objs {
		c.Free(p)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if e.tree.Root().Walk(d) != nil {
		t.Error("destroyed cache's directory stays")
	}
}

// slabtop (procps) reads the mounted slabinfo, bound over /proc/slabinfo
// inside a private mount namespace.
func TestSlabtop(t *testing.T) {
	needUnshare(t, "slabtop")
	e := newSlabEnv(t)
	c, _ := e.a.NewCache("slabtop-visible", 300, &slab.CacheOptions{Flags: slab.NoMerge})
	p, _ := c.Alloc()
	defer c.Free(p)
	mnt := mountTree(t, e.tree)
	script := "mount --bind " + filepath.Join(mnt, "proc/slabinfo") + " /proc/slabinfo && " +
		"grep -q hotslab /proc/self/mountinfo && slabtop -o -s c"
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("slabtop: %v\n%s", err, out)
	}
	for _, want := range []string{"slabtop-visible", "kmalloc-64", "Active / Total Objects"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("slabtop output lacks %q:\n%s", want, out)
		}
	}
	// Reads through the mount: mode 0400, d_types of directories and links.
	if b, err := os.ReadFile(filepath.Join(mnt, "proc/slabinfo")); err != nil || !strings.HasPrefix(string(b), "slabinfo - version: 2.1") {
		t.Errorf("slabinfo through the mount: %v", err)
	}
	ents, err := os.ReadDir(filepath.Join(mnt, "sys/kernel/slab"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]os.FileMode{}
	for _, d := range ents {
		types[d.Name()] = d.Type()
	}
	if types["slabtop-visible"] != os.ModeDir || types["kmalloc-64"] != os.ModeSymlink || types[":0000064"] != os.ModeDir {
		t.Errorf("entry types: %v", types)
	}
}

// The 2021 slab lesson: a write to shrink holds the file's active
// reference, and cache creation adds (and destruction removes) the
// directories under slab_mutex. Today's shrink (slab_flush_lock only) is
// accepted; a shrink that took slab_mutex (here through Allocator.Caches)
// is reported by lockdep.
func TestShrinkMustNotTakeSlabMutex(t *testing.T) {
	e := newSlabEnv(t)
	c, _ := e.a.NewCache("lesson", 128, &slab.CacheOptions{Flags: slab.NoMerge})
	if err := e.tree.Root().Walk("sys/kernel/slab/lesson/shrink").Write(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(); err != nil { // slab_mutex -> drain of kn->active#slab/shrink
		t.Fatal(err)
	}
	if n := lockdep.ReportCount(); n != 0 {
		t.Fatalf("today's shrink reported: %d", n)
	}
	lockdep.Reset()
	var got *lockdep.Report
	old := lockdep.SetHandler(func(r lockdep.Report) {
		if got == nil {
			got = &r
		}
	})
	t.Cleanup(func() {
		lockdep.SetHandler(old)
		lockdep.Reset()
	})
	d, _ := e.a.NewCache("lesson-2", 128, &slab.CacheOptions{Flags: slab.NoMerge})
	if err := d.Destroy(); err != nil { // records slab_mutex -> kn->active#slab/shrink again
		t.Fatal(err)
	}
	dir, err := e.tree.Root().Mkdir("lesson-variant", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := dir.AddFile("shrink", 0o200, sysfs.Attr{Store: func(context.Context, string) error {
		_ = e.a.Caches() // takes slab_mutex: the 2021 bug
		return nil
	}}, sysfs.ActiveClass("slab/shrink"))
	_ = bad.Write(context.Background(), "1")
	if got == nil || got.Kind != lockdep.Circular {
		t.Fatalf("a shrink taking slab_mutex was not reported: %v", got)
	}
}

// alloc_calls and free_calls of a StoreUser cache list the call sites;
// other caches answer ENOSYS, as the kernel's do.
func TestSlabCallsFiles(t *testing.T) {
	e := newSlabEnvOpts(t, &slab.Options{Debug: "U,tracked"})
	a, tree := e.a, e.tree
	c, _ := a.NewCache("tracked", 80, nil)
	var objs []unsafe.Pointer
	for range 5 {
		p, _ := c.Alloc()
		objs = append(objs, p)
	}
	if got := readNode(t, tree, "sys/kernel/slab/tracked/alloc_calls"); !strings.Contains(got, "      5 ") || !strings.Contains(got, "TestSlabCallsFiles") {
		t.Errorf("alloc_calls %q", got)
	}
	if got := readNode(t, tree, "sys/kernel/slab/tracked/store_user"); got != "1\n" {
		t.Errorf("store_user %q", got)
	}
	if _, err := tree.Root().Walk("sys/kernel/slab/:0000064/alloc_calls").Read(); !errors.Is(err, syscall.ENOSYS) {
		t.Errorf("alloc_calls of an untracked cache: %v", err)
	}
	for _, p := range objs {
		c.Free(p)
	}
}
