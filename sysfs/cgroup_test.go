package sysfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotslab/hotslab/slab"
	"github.com/hotslab/hotslab/sysfs"
)

func TestCgroupTree(t *testing.T) {
	e := newSlabEnv(t)
	a, tree := e.a, e.tree
	stop, err := sysfs.AddCgroup(tree, a.Memcg())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	api, err := a.Memcg().Root().Create("made-by-api") // shows up as a directory
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTree(t, tree)
	cg := filepath.Join(mnt, "sys/fs/cgroup")
	if _, err := os.Stat(filepath.Join(cg, "made-by-api", "memory.max")); err != nil {
		t.Fatal(err)
	}
	tenant := filepath.Join(cg, "tenant")
	if err := os.Mkdir(tenant, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(tenant, 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("mkdir twice: %v", err)
	}
	if err := os.Mkdir(filepath.Join(tenant, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tenant); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("rmdir with a child: %v", err)
	}
	g, err := a.Memcg().Lookup("tenant")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) error {
		return os.WriteFile(filepath.Join(tenant, name), []byte(data), 0)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(tenant, name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		return string(b)
	}
	if err := write("memory.max", "64M\n"); err != nil {
		t.Fatal(err)
	}
	if g.Max() != 64<<20 || read("memory.max") != "67108864\n" {
		t.Errorf("memory.max: %d, %q", g.Max(), read("memory.max"))
	}
	if err := write("memory.max", "lots"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("memory.max <- garbage: %v", err)
	}
	if g.Max() != 64<<20 {
		t.Errorf("garbage changed memory.max to %d", g.Max())
	}
	if err := write("memory.high", "max"); err != nil || read("memory.high") != "max\n" {
		t.Errorf("memory.high: %v %q", err, read("memory.high"))
	}
	if err := write("memory.current", "0"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write memory.current: %v", err)
	}
	c, _ := a.NewCache("cg-acct", 1000, &slab.CacheOptions{Flags: slab.Account | slab.NoMerge})
	p, err := c.In(g).Alloc()
	if err != nil {
		t.Fatal(err)
	}
	a.Memcg().Drain()
	if !strings.Contains(read("memory.stat"), "slab_unreclaimable 1004\n") {
		t.Errorf("memory.stat:\n%s", read("memory.stat"))
	}
	if read("memory.current") == "0\n" || !strings.HasPrefix(read("memory.events"), "low 0\n") {
		t.Errorf("current %q events %q", read("memory.current"), read("memory.events"))
	}
	if err := write("memory.peak", "reset"); err != nil {
		t.Error(err)
	}
	c.Free(p)
	if read("cgroup.controllers") != "memory\n" {
		t.Errorf("cgroup.controllers %q", read("cgroup.controllers"))
	}
	if err := os.Remove(filepath.Join(tenant, "child")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Memcg().Lookup("tenant"); err == nil {
		t.Error("rmdir left the group")
	}
	if err := api.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cg, "made-by-api")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a group removed by the API keeps its directory: %v", err)
	}
	if _, err := os.ReadFile(filepath.Join(cg, "memory.stat")); err != nil {
		t.Errorf("root memory.stat: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cg, "memory.max")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root has memory.max: %v", err)
	}
}
