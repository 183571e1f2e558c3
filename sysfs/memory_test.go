package sysfs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
	"github.com/hotslab/hotslab/sysfs"
)

// memEnv is a System (2 nodes, 2 MiB blocks, one online block per node
// and one offline block on node 1) served in a tree.
type memEnv struct {
	sys     *mem.System
	tree    *sysfs.Tree
	offline int // the offline block
}

func newMemEnv(t *testing.T) *memEnv {
	t.Helper()
	sys, err := mem.New(mem.Config{Nodes: 2, BlockSize: 2 << 20, InitialPerNode: 2 << 20, MaxBlocks: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	ids, err := sys.AddMemory(1, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	tree := sysfs.NewTree()
	stop, err := sysfs.AddMemory(tree, sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &memEnv{sys: sys, tree: tree, offline: ids[0]}
}

func (e *memEnv) node(t *testing.T, path string) *sysfs.Node {
	t.Helper()
	n := e.tree.Root().Walk(path)
	if n == nil {
		t.Fatalf("%s: missing", path)
	}
	return n
}

func (e *memEnv) read(t *testing.T, path string) string {
	t.Helper()
	s, err := e.node(t, path).Read()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s
}

const memDir = "sys/devices/system/memory"

func TestMemoryFiles(t *testing.T) {
	e := newMemEnv(t)
	b := "memory" + itoa(e.offline)
	for path, want := range map[string]string{
		memDir + "/block_size_bytes":         "200000\n",
		memDir + "/auto_online_blocks":       "offline\n",
		memDir + "/memory0/state":            "online\n",
		memDir + "/memory0/online":           "1\n",
		memDir + "/memory0/phys_index":       "00000000\n",
		memDir + "/memory0/removable":        "1\n",
		memDir + "/" + b + "/state":          "offline\n",
		memDir + "/" + b + "/online":         "0\n",
		"sys/devices/system/node/has_memory": "0-1\n",
		"sys/devices/system/node/possible":   "0-1\n",
	} {
		if got := e.read(t, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if got := e.read(t, memDir+"/"+b+"/valid_zones"); !strings.HasPrefix(got, "Normal") && !strings.HasPrefix(got, "Movable") {
		t.Errorf("valid_zones %q", got)
	}
	if l := e.node(t, memDir+"/"+b+"/node1"); l.Kind() != sysfs.KindLink || l.Target() != "../../node/node1" {
		t.Errorf("node link %v %q", l.Kind(), l.Target())
	}
	if l := e.node(t, "sys/devices/system/node/node1/"+b); l.Kind() != sysfs.KindLink {
		t.Errorf("node's memory link")
	}
}

func TestMemoryWrites(t *testing.T) {
	e := newMemEnv(t)
	ctx := context.Background()
	st := e.node(t, memDir+"/memory"+itoa(e.offline)+"/state")
	on := e.node(t, memDir+"/memory"+itoa(e.offline)+"/online")
	for _, bad := range []string{"garbage", "", "online\n\n", "Online", "offline"} { // offline: the state it is in
		if err := st.Write(ctx, bad); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("state <- %q: %v", bad, err)
		}
	}
	if got := e.read(t, st.Path()); got != "offline\n" {
		t.Fatalf("state after bad writes: %q", got)
	}
	if err := st.Write(ctx, "online_movable"); err != nil {
		t.Fatal(err)
	}
	if got := e.read(t, memDir+"/memory"+itoa(e.offline)+"/valid_zones"); got != "Movable\n" {
		t.Errorf("valid_zones after online_movable: %q", got)
	}
	if err := st.Write(ctx, "online\n"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("online when online: %v", err)
	}
	if err := on.Write(ctx, "1"); err != nil { // idempotent
		t.Errorf("online <- 1 when online: %v", err)
	}
	if err := st.Write(ctx, "offline\n"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"on", "0", "y\n", "n", "Y", "off"} {
		if err := on.Write(ctx, w); err != nil {
			t.Errorf("online <- %q: %v", w, err)
		}
	}
	if err := on.Write(ctx, "maybe"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("online <- maybe: %v", err)
	}
	// probe: add a block by address.
	probe := e.node(t, memDir+"/probe")
	if err := probe.Write(ctx, "0x1"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("probe unaligned: %v", err)
	}
	if err := probe.Write(ctx, "0"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("probe present: %v", err)
	}
	if err := probe.Write(ctx, "0x1000000\n"); err != nil { // block 8
		t.Fatal(err)
	}
	if e.tree.Root().Walk(memDir+"/memory8/state") == nil {
		t.Fatal("probed block has no directory")
	}
	if err := e.sys.RemoveMemory(8); err != nil {
		t.Fatal(err)
	}
	if e.tree.Root().Walk(memDir+"/memory8") != nil {
		t.Fatal("removed block's directory stays")
	}
	if _, err := e.node(t, memDir+"/block_size_bytes").Read(); err != nil {
		t.Fatal(err)
	}
	if err := e.node(t, memDir+"/block_size_bytes").Write(ctx, "1"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write to a read-only file: %v", err)
	}
	auto := e.node(t, memDir+"/auto_online_blocks")
	if err := auto.Write(ctx, "online_movable\n"); err != nil || e.read(t, auto.Path()) != "online_movable\n" {
		t.Errorf("auto_online_blocks: %v", err)
	}
	if err := auto.Write(ctx, "sometimes"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("auto_online_blocks <- garbage: %v", err)
	}
}

// A hot-remove that holds device_hotplug_lock while it waits for the
// block's active references completes while a state write races with it:
// the write's trylock fails, it drops its reference and restarts, and
// then finds the block gone.
func TestRemoveRacingStateWrite(t *testing.T) {
	e := newMemEnv(t)
	st := e.node(t, memDir+"/memory"+itoa(e.offline)+"/state")
	e.sys.LockDeviceHotplug()
	before := sysfs.Restarts()
	done := make(chan error)
	go func() { done <- st.Write(context.Background(), "online") }()
	for sysfs.Restarts() == before { // the writer holds a reference, then restarts
		runtimeGosched()
	}
	if err := e.sys.RemoveMemoryLocked(e.offline); err != nil {
		t.Fatal(err)
	}
	e.sys.UnlockDeviceHotplug()
	if err := <-done; !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("the racing write: %v (want ENODEV: the block is gone)", err)
	}
}

// TestLsmem checks util-linux's lsmem against the mounted tree.
func TestLsmem(t *testing.T) {
	if _, err := exec.LookPath("lsmem"); err != nil {
		t.Skip("lsmem not installed")
	}
	e := newMemEnv(t)
	mnt := mountTree(t, e.tree)
	out, err := exec.Command("lsmem", "--sysroot", mnt, "-o", "BLOCK,STATE,NODE,ZONES", "-n", "--split", "STATE,NODE,ZONES").CombinedOutput()
	if err != nil {
		t.Fatalf("lsmem: %v\n%s", err, out)
	}
	got := strings.Join(strings.Fields(string(out)), " ")
	want := "0 online 0 Normal 1 online 1 Normal " + itoa(e.offline) + " offline 1 "
	if !strings.HasPrefix(got, want) {
		t.Errorf("lsmem:\n%s\nwant fields starting %q", out, want)
	}
	// Reads and writes through the mount, with the kernel's errnos.
	state := filepath.Join(mnt, memDir, "memory"+itoa(e.offline), "state")
	if err := os.WriteFile(state, []byte("online_kernel\n"), 0); err != nil { // O_TRUNC, newline
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(state); string(b) != "online\n" {
		t.Errorf("state %q", b)
	}
	f, err := os.OpenFile(state, os.O_WRONLY, 0) // chmem's way: no O_TRUNC, no newline
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("offline"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("garbage"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("garbage through the mount: %v", err)
	}
	f.Close()
	if b, _ := os.ReadFile(state); string(b) != "offline\n" {
		t.Errorf("state %q", b)
	}
	if err := os.WriteFile(filepath.Join(mnt, memDir, "block_size_bytes"), []byte("1"), 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write to block_size_bytes: %v", err)
	}
	ents, err := os.ReadDir(filepath.Join(mnt, memDir, "memory0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if d.Name() == "node0" && d.Type() != os.ModeSymlink {
			t.Errorf("node0 entry type %v", d.Type())
		}
	}
}

// TestChmem drives util-linux's chmem on the mounted memory directory,
// bind-mounted over /sys/devices/system/memory inside a private mount
// namespace (unshare -m): never the machine's own.
func TestChmem(t *testing.T) {
	needUnshare(t, "chmem")
	e := newMemEnv(t)
	mnt := mountTree(t, e.tree)
	chmem := func(args string) (int, string) {
		script := "mount --bind " + filepath.Join(mnt, memDir) + " /sys/devices/system/memory && " +
			"grep -q hotslab /proc/self/mountinfo && chmem " + args
		out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("unshare: %v", err)
		}
		return code, string(out)
	}
	b := itoa(e.offline)
	if code, out := chmem("-e -b " + b); code != 0 {
		t.Fatalf("chmem -e -b %s: exit %d\n%s", b, code, out)
	}
	if got := e.read(t, memDir+"/memory"+b+"/state"); got != "online\n" {
		t.Fatalf("after chmem -e: %q", got)
	}
	if code, out := chmem("-d -b " + b); code != 0 {
		t.Fatalf("chmem -d -b %s: exit %d\n%s", b, code, out)
	}
	if got := e.read(t, memDir+"/memory"+b+"/state"); got != "offline\n" {
		t.Fatalf("after chmem -d: %q", got)
	}
	// A busy block: an unmovable allocation in block 0 keeps it online.
	if _, err := e.sys.AllocPages(0, 8, 0); err != nil {
		t.Fatal(err)
	}
	code, out := chmem("-d -b 0")
	if code != 1 && code != 64 {
		t.Fatalf("chmem -d on a busy block: exit %d\n%s", code, out)
	}
	if got := e.read(t, memDir+"/memory0/state"); got != "online\n" {
		t.Fatalf("busy block after chmem -d: %q", got)
	}
}

// A store that took device_hotplug_lock with a plain Lock while holding
// its active reference would deadlock with a hot-remove (which holds the
// lock while it drains the references): lockdep reports it at the Lock,
// before it can block.
func TestPlainLockInStoreReported(t *testing.T) {
	lockdep.Reset()
	var got *lockdep.Report
	old := lockdep.SetHandler(func(r lockdep.Report) {
		if got == nil {
			got = &r
		}
	})
	t.Cleanup(func() {
		lockdep.SetHandler(old)
		lockdep.Reset() // forget this test's expected report
	})
	e := newMemEnv(t)
	// A hot-remove: device_hotplug_lock, then the drain of a block's
	// state file (records device_hotplug_lock -> kn->active#memory/state).
	if err := e.sys.RemoveMemory(e.offline); err != nil {
		t.Fatal(err)
	}
	if got != nil {
		t.Fatalf("the remove alone was reported: %s", got.Text)
	}
	d := e.node(t, memDir+"/memory0")
	bad, err := d.AddFile("state-plain-lock", 0o644, sysfs.Attr{
		Show: func() (string, error) { return "", nil },
		Store: func(ctx context.Context, data string) error {
			e.sys.LockDeviceHotplug() // the wrong way: not a trylock
			e.sys.UnlockDeviceHotplug()
			return nil
		},
	}, sysfs.ActiveClass("memory/state"))
	if err != nil {
		t.Fatal(err)
	}
	_ = bad.Write(context.Background(), "x")
	if got == nil || got.Kind != lockdep.Circular {
		t.Fatalf("lockdep did not report the plain Lock: %v", got)
	}
	t.Logf("reported:\n%s", got.Text)
}

// Notifier error injection makes an online or offline fail with the
// written errno and leaves the block's state as it was.
func TestNotifierErrorInject(t *testing.T) {
	e := newMemEnv(t)
	stop, err := sysfs.AddNotifierErrorInject(e.tree, e.sys)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	inj := "sys/kernel/debug/notifier-error-inject/memory/actions/"
	onErr := e.node(t, inj+"MEM_GOING_ONLINE/error")
	offErr := e.node(t, inj+"MEM_GOING_OFFLINE/error")
	st := e.node(t, memDir+"/memory"+itoa(e.offline)+"/state")
	if err := onErr.Write(ctx, "-16\n"); err != nil { // EBUSY
		t.Fatal(err)
	}
	if got := e.read(t, onErr.Path()); got != "-16\n" {
		t.Errorf("error file %q", got)
	}
	if err := st.Write(ctx, "online"); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("online with MEM_GOING_ONLINE failing: %v", err)
	}
	if got := e.read(t, st.Path()); got != "offline\n" {
		t.Fatalf("state after the failed online: %q", got)
	}
	for _, c := range [][2]string{{"-99999", "-4095\n"}, {"5", "0\n"}, {"-3", "-3\n"}, {"0", "0\n"}} {
		if err := onErr.Write(ctx, c[0]); err != nil || e.read(t, onErr.Path()) != c[1] {
			t.Errorf("error <- %s: %v, reads %q, want %q", c[0], err, e.read(t, onErr.Path()), c[1])
		}
	}
	if err := onErr.Write(ctx, "x"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("error <- x: %v", err)
	}
	if err := st.Write(ctx, "online"); err != nil {
		t.Fatal(err)
	}
	if err := offErr.Write(ctx, "-12"); err != nil { // ENOMEM
		t.Fatal(err)
	}
	if err := st.Write(ctx, "offline"); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("offline with MEM_GOING_OFFLINE failing: %v", err)
	}
	if got := e.read(t, st.Path()); got != "online\n" {
		t.Fatalf("state after the failed offline: %q", got)
	}
	if err := offErr.Write(ctx, "0"); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, "offline"); err != nil {
		t.Fatal(err)
	}
}

// Many writers to state, online and probe at once (goroutines here, as
// processes would through the mount) keep every zone's and node's
// counters exact: each zone's present pages are its online blocks'.
func TestConcurrentWritersKeepCountersExact(t *testing.T) {
	e := newMemEnv(t)
	ctx := context.Background()
	// Four more offline blocks to play with.
	var ids []int
	for i := 0; i < 4; i++ {
		got, err := e.sys.AddMemory(i%2, 2<<20)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	ids = append(ids, e.offline)
	words := []string{"online", "offline", "online_movable", "online_kernel", "offline\n"}
	bools := []string{"1", "0", "on", "off", "y", "n"}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				id := ids[(w+i)%len(ids)]
				dir := memDir + "/memory" + itoa(id)
				if (w+i)%2 == 0 {
					_ = e.node(t, dir+"/state").Write(ctx, words[(w*7+i)%len(words)])
				} else {
					_ = e.node(t, dir+"/online").Write(ctx, bools[(w*5+i)%len(bools)])
				}
				if i%20 == 0 {
					_ = e.node(t, memDir+"/probe").Write(ctx, "0x"+strconv.FormatInt(int64(20+w)<<21, 16))
				}
			}
		}(w)
	}
	wg.Wait()
	present := map[[2]int]int64{} // node, zone -> pages
	online := 0
	for _, b := range e.sys.Blocks() {
		if b.State == mem.BlockOnline {
			present[[2]int{b.Node, int(b.Zone)}] += e.sys.BlockSize() / mem.PageSize
			online++
		}
		if got := e.read(t, memDir+"/memory"+itoa(b.Index)+"/state"); got != b.State.String()+"\n" {
			t.Errorf("memory%d/state %q, block %v", b.Index, got, b.State)
		}
	}
	st := e.sys.Stats()
	if st.OnlineBlocks != online {
		t.Errorf("online blocks %d, counted %d", st.OnlineBlocks, online)
	}
	for _, z := range st.Zones {
		if want := present[[2]int{z.Node, int(z.Zone)}]; z.Present != want || z.Managed != want || z.Free > z.Present {
			t.Errorf("node %d zone %v: present %d managed %d free %d, want present %d", z.Node, z.Zone, z.Present, z.Managed, z.Free, want)
		}
	}
	if got := e.read(t, "sys/devices/system/node/has_memory"); got != "0-1\n" {
		t.Errorf("has_memory %q", got)
	}
}

// The failslab and fail_page_alloc debugfs files set the knobs, refuse
// garbage, and an injected failure changes nothing.
func TestFaultInjectionFiles(t *testing.T) {
	e := newSlabEnv(t)
	sys, a, tree := e.sys, e.a, e.tree
	if err := sysfs.AddFaultInjection(tree, sys, a); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := func(path, data string) error { return tree.Root().Walk(path).Write(ctx, data) }
	r := func(path string) string { s, _ := tree.Root().Walk(path).Read(); return s }
	fs := "sys/kernel/debug/failslab/"
	for file, want := range map[string]string{"probability": "0\n", "interval": "1\n", "times": "1\n", "space": "0\n", "verbose": "2\n", "cache-filter": "N\n"} {
		if got := r(fs + file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := w(fs+"probability", "101"); !errors.Is(err, syscall.EINVAL) || r(fs+"probability") != "0\n" {
		t.Errorf("probability <- 101: %v", err)
	}
	if err := w(fs+"times", "banana"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("times <- banana: %v", err)
	}
	c, _ := a.NewCache("fi-cache", 128, &slab.CacheOptions{Flags: slab.NoMerge})
	for _, kv := range [][2]string{{"verbose", "0"}, {"times", "-1"}, {"cache-filter", "Y\n"}, {"probability", "100"}} {
		if err := w(fs+kv[0], kv[1]); err != nil {
			t.Fatalf("%s <- %s: %v", kv[0], kv[1], err)
		}
	}
	if _, err := c.Alloc(); err != nil {
		t.Errorf("an unmarked cache failed: %v", err)
	}
	if err := w("sys/kernel/slab/fi-cache/failslab", "1"); err != nil {
		t.Fatal(err)
	}
	before := c.Stats()
	if _, err := c.Alloc(); !errors.Is(err, syscall.ENOMEM) {
		t.Errorf("a marked cache: %v", err)
	}
	if after := c.Stats(); after.ActiveObjects() != before.ActiveObjects() {
		t.Errorf("the failed allocation changed the cache")
	}
	if err := w(fs+"probability", "0"); err != nil {
		t.Fatal(err)
	}
	fp := "sys/kernel/debug/fail_page_alloc/"
	if got := r(fp + "min-order"); got != "1\n" {
		t.Errorf("min-order %q", got)
	}
	if err := w(fp+"min-order", "99"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("min-order <- 99: %v", err)
	}
	for _, kv := range [][2]string{{"verbose", "0"}, {"min-order", "0"}, {"probability", "100"}} {
		if err := w(fp+kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sys.AllocPages(mem.NumaNoNode, 0, 0); !errors.Is(err, syscall.ENOMEM) {
		t.Errorf("AllocPages with fail_page_alloc: %v", err)
	}
	if got := r(fp + "times"); got != "0\n" {
		t.Errorf("times after its one failure: %q", got)
	}
}

// snapshot is what a failed hotplug operation must leave as it was.
type snapshot struct {
	stats  mem.Stats
	blocks []mem.BlockInfo
	masks  string
}

func takeSnapshot(t *testing.T, e *memEnv) snapshot {
	t.Helper()
	e.sys.DrainPages()
	st := e.sys.Stats()
	st.Allocs, st.Frees, st.ReportedBytes = 0, 0, 0 // activity, not state
	for i := range st.Zones {
		st.Zones[i].PerPFree, st.Zones[i].Reported = 0, 0
	}
	return snapshot{stats: st, blocks: e.sys.Blocks(),
		masks: e.read(t, "sys/devices/system/node/has_memory") + e.read(t, "sys/devices/system/node/has_normal_memory")}
}

// Every injected failure of an online or offline rolls back completely:
// the blocks, the zones' and nodes' counters and the node masks are as
// they were before.
func TestInjectedFailuresRollBack(t *testing.T) {
	e := newMemEnv(t)
	stop, err := sysfs.AddNotifierErrorInject(e.tree, e.sys)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	inj := "sys/kernel/debug/notifier-error-inject/memory/actions/"
	st := e.node(t, memDir+"/memory"+itoa(e.offline)+"/state")
	for _, c := range []struct {
		event, word string
		errno       syscall.Errno
	}{
		{"MEM_GOING_ONLINE", "online_kernel", syscall.EBUSY},
		{"MEM_GOING_ONLINE", "online_movable", syscall.ENOMEM},
		{"MEM_GOING_OFFLINE", "offline", syscall.EIO},
	} {
		if c.event == "MEM_GOING_OFFLINE" {
			if err := st.Write(ctx, "online_movable"); err != nil {
				t.Fatal(err)
			}
		}
		before := takeSnapshot(t, e)
		if err := e.node(t, inj+c.event+"/error").Write(ctx, itoa(-int(c.errno))); err != nil {
			t.Fatal(err)
		}
		if err := st.Write(ctx, c.word); !errors.Is(err, c.errno) {
			t.Fatalf("%s with %s failing: %v", c.word, c.event, err)
		}
		after := takeSnapshot(t, e)
		if !reflect.DeepEqual(before, after) {
			t.Errorf("%s failing changed the system:\nbefore %+v\nafter  %+v", c.event, before, after)
		}
		if err := e.node(t, inj+c.event+"/error").Write(ctx, "0"); err != nil {
			t.Fatal(err)
		}
	}
}
