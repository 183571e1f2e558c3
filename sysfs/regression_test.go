package sysfs_test

// Regression tests from an adversarial review of the views: each comment
// says what the kernel does and what hotslab did wrong before the fix
// that the test now holds in place.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/slab"
	"github.com/hotslab/hotslab/sysfs"
)

// Kernel: SLAB_ATTR(shrink) and SLAB_ATTR(validate) are 0600 (the
// reference: "files 0400 read-only, 0600 writable"); reading them gives
// an empty file. Here they are 0200 and unreadable.
func TestRegressionSlabWritableModes(t *testing.T) {
	e := newSlabEnv(t)
	for _, f := range []string{"shrink", "validate"} {
		n := e.tree.Root().Walk("sys/kernel/slab/:0000064/" + f)
		if n == nil {
			t.Fatalf("%s missing", f)
		}
		if n.Mode() != 0o600 {
			t.Errorf("%s mode %#o, want 0600", f, n.Mode())
		}
		if s, err := n.Read(); err != nil || s != "" {
			t.Errorf("read %s: %q, %v (kernel: empty, success)", f, s, err)
		}
	}
}

// Kernel shrink_store: buf[0]=='1' shrinks, anything else is EINVAL;
// validate_store likewise (EINVAL unless '1'). Here any kstrtobool word
// is accepted ("0", "n", "off" succeed doing nothing, "y"/"on" shrink).
func TestRegressionShrinkValidateZeroIsEINVAL(t *testing.T) {
	e := newSlabEnv(t)
	ctx := context.Background()
	for _, f := range []string{"shrink", "validate"} {
		n := e.tree.Root().Walk("sys/kernel/slab/:0000064/" + f)
		for _, w := range []string{"0", "n\n", "off", "y"} {
			if err := n.Write(ctx, w); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("%s <- %q: %v, want EINVAL", f, w, err)
			}
		}
	}
}

// Kernel total_objects_show = show_slab_objects(SO_ALL|SO_TOTAL): a total
// followed by per-node counts, "64 N0=64" (checked on this machine's
// /sys/kernel/slab/:0000064/total_objects). Here only the total.
func TestRegressionTotalObjectsPerNode(t *testing.T) {
	e := newSlabEnv(t)
	c, err := e.a.NewCache("rv-total", 192, &slab.CacheOptions{Flags: slab.NoMerge})
	if err != nil {
		t.Fatal(err)
	}
	var objs []unsafe.Pointer
	for range 50 {
		p, err := c.AllocNode(1, slab.ThisNode)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, p)
	}
	defer func() {
		for _, p := range objs {
			c.Free(p)
		}
	}()
	got := readNode(t, e.tree, "sys/kernel/slab/rv-total/total_objects")
	if !strings.Contains(got, " N1=") {
		t.Errorf("total_objects = %q, want the kernel's \"<total> N1=<n>\" form", got)
	}
}

// Stat sizes: procfs files report size 0 (stat /proc/slabinfo: 0) and
// sysfs symlinks size 0 (stat .../memory0/node0: 0); here 4096 and
// len(target).
func TestRegressionStatSizes(t *testing.T) {
	e := newSlabEnv(t)
	if _, err := sysfs.AddMemory(e.tree, e.sys); err != nil {
		t.Fatal(err)
	}
	mnt := mountTree(t, e.tree)
	for path, want := range map[string]int64{
		"proc/slabinfo": 0,
		"sys/devices/system/memory/memory0/node0": 0,
		"sys/kernel/slab/kmalloc-64":              0,
	} {
		st, err := os.Lstat(filepath.Join(mnt, path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != want {
			t.Errorf("%s size %d, want %d (kernel)", path, st.Size(), want)
		}
	}
}

// The mount has allow_other and no default_permissions, and Open checks
// only the mode's "anyone" bits: an unprivileged user can write a
// root-owned 0644 attribute and offline memory (sysfs: EACCES).
func TestRegressionNonRootCanWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	e := newMemEnv(t)
	// A mount point that "nobody" can reach (t.TempDir's parents are 0700).
	base, err := os.MkdirTemp("/tmp", "rv-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	m, err := sysfs.MountTree(base, e.tree)
	if err != nil {
		t.Skip(err)
	}
	defer m.Unmount()
	state := filepath.Join(base, memDir, "memory0", "state")
	st, _ := os.Stat(state)
	t.Logf("%s: mode %v", state, st.Mode())
	cmd := exec.Command("sh", "-c", "printf offline > "+state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	bi, _ := e.sys.Block(0)
	t.Logf("uid 65534: err %v, output %q; memory0 now %v", err, out, bi.State)
	if err == nil {
		t.Errorf("an unprivileged user wrote a 0644 root-owned state file (memory0 now %v)", bi.State)
	}
}

// Unmount of a busy mount (a process holds a file open in it) detaches it
// lazily and returns without waiting for the last user (hotslab run must
// end on SIGINT while a shell is cd'd into the views).
func TestRegressionUnmountBusyHangs(t *testing.T) {
	e := newMemEnv(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	dir := t.TempDir()
	m, err := sysfs.MountTree(dir, e.tree)
	if err != nil {
		t.Skip(err)
	}
	f, err := os.Open(filepath.Join(dir, memDir, "block_size_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Unmount: %v", err)
		}
	case <-time.After(30 * time.Second): // a hang detector, not a timing assertion
		t.Errorf("Unmount of a busy mount still blocked after 30s")
	}
	f.Close()
}

// cgroup files (kernfs atomic_write_len = PAGE_SIZE): a write of more
// than a page fails with E2BIG. Here it is one Store and succeeds.
func TestRegressionCgroupBigWriteE2BIG(t *testing.T) {
	e := newSlabEnv(t)
	stop, err := sysfs.AddCgroup(e.tree, e.a.Memcg())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := e.a.Memcg().Root().Create("big"); err != nil {
		t.Fatal(err)
	}
	mnt := mountTree(t, e.tree)
	data := "64M" + strings.Repeat(" ", 5000)
	err = os.WriteFile(filepath.Join(mnt, "sys/fs/cgroup/big/memory.max"), []byte(data), 0)
	g, _ := e.a.Memcg().Lookup("big")
	if !errors.Is(err, syscall.E2BIG) {
		t.Errorf("5003-byte write to memory.max: %v (max now %d), want E2BIG", err, g.Max())
	}
}

// sysfs attributes (no atomic_write_len): kernfs caps one write at
// PAGE_SIZE, so write(2) of 5001 bytes stores the first 4096 and
// returns 4096. Here the whole buffer goes to the Store.
func TestRegressionSysfsWriteCappedAtPage(t *testing.T) {
	e := newMemEnv(t)
	mnt := mountTree(t, e.tree)
	fd, err := syscall.Open(filepath.Join(mnt, memDir, "memory0", "online"), syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	n, err := syscall.Write(fd, []byte("1"+strings.Repeat("x", 5000)))
	if n != 4096 {
		t.Errorf("write(2) of 5001 bytes: n=%d err=%v, want 4096", n, err)
	}
}

// Kernel cgroup_mkdir: a name with a newline is EINVAL. Here accepted.
func TestRegressionCgroupMkdirNewline(t *testing.T) {
	e := newSlabEnv(t)
	stop, err := sysfs.AddCgroup(e.tree, e.a.Memcg())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	mnt := mountTree(t, e.tree)
	if err := os.Mkdir(filepath.Join(mnt, "sys/fs/cgroup", "a\nb"), 0o755); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mkdir \"a\\nb\": %v, want EINVAL", err)
	}
}

// probe and the error-injection files parse with Go's base-0 syntax,
// which takes what kstrtoull/kstrtoll refuse: underscores, 0o and 0b.
func TestRegressionGoNumberSyntaxAccepted(t *testing.T) {
	e := newMemEnv(t)
	ctx := context.Background()
	probe := e.node(t, memDir+"/probe")
	if err := probe.Write(ctx, "0x100_0000"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("probe <- 0x100_0000: %v, want EINVAL (kstrtoull)", err)
	}
	stop, err := sysfs.AddNotifierErrorInject(e.tree, e.sys)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	inj := e.node(t, "sys/kernel/debug/notifier-error-inject/memory/actions/MEM_GOING_ONLINE/error")
	for _, w := range []string{"-1_6", "-0b10000", "-0o20"} {
		if err := inj.Write(ctx, w); !errors.Is(err, syscall.EINVAL) {
			s, _ := inj.Read()
			t.Errorf("error <- %q: %v (reads %q), want EINVAL (kstrtoll)", w, err, strings.TrimSpace(s))
		}
	}
	_ = inj.Write(ctx, "0")
}

// DirOps doc: "Both run with ... the parent's active reference held
// (Rmdir: the victim's)". fuse.go's Mkdir/Rmdir take none: a removal of
// the parent does not wait for a running Mkdir.
type blockingOps struct{ entered, release chan struct{} }

func (b blockingOps) Mkdir(parent *sysfs.Node, name string) error {
	close(b.entered)
	<-b.release
	_, err := parent.Mkdir(name, 0o755)
	return err
}
func (b blockingOps) Rmdir(n *sysfs.Node) error { return n.Remove() }

func TestRegressionDirOpsNoActiveRef(t *testing.T) {
	tree := sysfs.NewTree()
	d, _ := tree.Root().Mkdir("groups", 0o755)
	ops := blockingOps{make(chan struct{}), make(chan struct{})}
	d.SetDirOps(ops)
	mnt := mountTree(t, tree)
	mk := make(chan error, 1)
	go func() { mk <- os.Mkdir(filepath.Join(mnt, "groups", "x"), 0o755) }()
	<-ops.entered
	rm := make(chan struct{})
	go func() { d.Remove(); close(rm) }()
	select {
	case <-rm:
		t.Errorf("the parent's Remove finished while its Mkdir ran: no active reference held")
	case <-time.After(300 * time.Millisecond):
	}
	close(ops.release)
	t.Logf("mkdir: %v", <-mk)
	<-rm
}

// Setattr accepts chmod (and a non-zero truncate) on any node and
// changes nothing: chmod reports success but the mode stays (sysfs
// applies it).
func TestRegressionChmodIgnored(t *testing.T) {
	e := newMemEnv(t)
	mnt := mountTree(t, e.tree)
	p := filepath.Join(mnt, memDir, "memory0", "state")
	if err := os.Chmod(p, 0o600); err != nil {
		t.Logf("chmod: %v", err)
		return
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("chmod 0600 succeeded but mode is %v", st.Mode().Perm())
	}
}

// A writer killed while its state write is restarting (device_hotplug_lock
// held elsewhere): the kernel's restart_syscall never re-runs the store for
// a dead process. Here the FUSE interrupt must cancel ctx, or the store
// runs once the lock is free.
func TestRegressionKilledWriterStoreDoesNotRun(t *testing.T) {
	e := newMemEnv(t)
	mnt := mountTree(t, e.tree)
	state := filepath.Join(mnt, memDir, "memory"+itoa(e.offline), "state")
	e.sys.LockDeviceHotplug()
	before := sysfs.Restarts()
	cmd := exec.Command("sh", "-c", "printf online > "+state)
	if err := cmd.Start(); err != nil {
		e.sys.UnlockDeviceHotplug()
		t.Fatal(err)
	}
	for sysfs.Restarts() == before {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	gone := false
	select {
	case err := <-exited:
		gone = true
		t.Logf("writer exited while the lock was held: %v", err)
	case <-time.After(2 * time.Second):
		t.Logf("killed writer still not gone after 2s (server ignores FUSE_INTERRUPT?)")
	}
	e.sys.UnlockDeviceHotplug()
	time.Sleep(200 * time.Millisecond)
	if bi, _ := e.sys.Block(e.offline); bi.State.String() != "offline" {
		t.Errorf("the killed writer's store ran after it died: block is %v", bi.State)
	}
	if !gone {
		<-exited
	}
}

// GroupAdded makes the directory visible first, then sets its DirOps
// (an unsynchronised field write) and adds its files: a mkdir into a
// group that just appeared can see EPERM (no DirOps yet), and a reader
// ENOENT for memory.max. The kernel's cgroup root creates directories
// deactivated and activates them with all their files.
func TestRegressionCgroupDirVisibleBeforeReady(t *testing.T) {
	e := newSlabEnv(t)
	stop, err := sysfs.AddCgroup(e.tree, e.a.Memcg())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	root := e.a.Memcg().Root()
	cg := e.tree.Root().Walk("sys/fs/cgroup")
	enoent := 0
	for i := range 300 {
		name := fmt.Sprintf("g%d", i)
		done := make(chan struct{})
		go func() { root.Create(name); close(done) }()
		for {
			d := cg.Lookup(name)
			if d != nil {
				if d.Lookup("memory.max") == nil {
					enoent++
				}
				break
			}
			select {
			case <-done:
			default:
				continue
			}
			break
		}
		<-done
	}
	if enoent > 0 {
		t.Errorf("%d of 300 new groups were visible without their memory.max", enoent)
	}
}

// Namespace operations the tree does not support get the VFS's errnos
// on sysfs: unlink/rename/symlink EPERM, O_CREAT of a new name EACCES.
func TestRegressionUnsupportedOpsErrnos(t *testing.T) {
	e := newMemEnv(t)
	mnt := mountTree(t, e.tree)
	md := filepath.Join(mnt, memDir)
	check := func(what string, err error, want syscall.Errno) {
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	check("unlink state", syscall.Unlink(filepath.Join(md, "memory0", "state")), syscall.EPERM)
	if _, err := os.Stat(filepath.Join(md, "memory0", "state")); err != nil {
		t.Errorf("state after the unlink: %v", err)
	} else {
		t.Logf("state still there after the \"successful\" unlink")
	}
	check("rename", syscall.Rename(filepath.Join(md, "memory0", "state"), filepath.Join(md, "memory0", "x")), syscall.EPERM)
	check("symlink", syscall.Symlink("x", filepath.Join(md, "newlink")), syscall.EPERM)
	_, err := syscall.Open(filepath.Join(md, "newfile"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	check("O_CREAT", err, syscall.EACCES)
	check("mkdir (no DirOps)", syscall.Mkdir(filepath.Join(md, "newdir"), 0o755), syscall.EPERM)
}

// doc.go: "Each write(2) is one Store". A write larger than the mount's
// max_write reaches the server as several WRITE requests: several Stores,
// each with a fragment (sysfs: one store of the first PAGE_SIZE bytes).
func TestRegressionBigWriteSplitIntoStores(t *testing.T) {
	tree := sysfs.NewTree()
	var mu sync.Mutex
	var calls []int
	if _, err := tree.Root().AddFile("attr", 0o644, sysfs.Attr{
		Show: func() (string, error) { return "x\n", nil },
		Store: func(_ context.Context, data string) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, len(data))
			return nil
		},
	}, sysfs.ActiveClass("review/attr")); err != nil {
		t.Fatal(err)
	}
	mnt := mountTree(t, tree)
	fd, err := syscall.Open(filepath.Join(mnt, "attr"), syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	n, err := syscall.Write(fd, make([]byte, 300<<10))
	mu.Lock()
	defer mu.Unlock()
	t.Logf("write(2) of 300 KiB: n=%d err=%v; Stores: %v", n, err, calls)
	if len(calls) != 1 {
		t.Errorf("one write(2) became %d Stores", len(calls))
	}
}
