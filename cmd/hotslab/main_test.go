package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }

func TestRunSmall(t *testing.T) {
	cfg := `{"block_size":"2M","initial_per_node":"4M","duration":"700ms","report_interval":"300ms","hotplug_interval":"20ms","slab_debug":"FZPU,dentry"}`
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run([]string{"run", "-config", path, "-sysfs", ""}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	s := out.String()
	for _, want := range []string{"slabinfo - version: 2.1", "inode_cache ", "kmalloc-64 ", "memory0 ", "tenant tenant-a",
		"verification: objects checked", "corruption 0, leaks 0, lockdep reports 0"} {
		if !strings.Contains(s, want) {
			t.Fatalf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]string{
		"size":    `{"block_size":"12Q"}`,
		"policy":  `{"auto_online":"sideways"}`,
		"unknown": `{"nodez":2}`,
		"flag":    `{"caches":[{"name":"x","size":8,"flags":["bogus"]}]}`,
		"cache":   `{"caches":[{"name":"x","size":0}]}`,
		"debug":   `{"slab_debug":"Q,x"}`,
	} {
		path := filepath.Join(dir, name+".json")
		os.WriteFile(path, []byte(cfg), 0o644)
		var out, errb bytes.Buffer
		if err := run([]string{"run", "-config", path, "-duration", "100ms"}, &out, &errb); err == nil {
			t.Errorf("%s: accepted %s", name, cfg)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"frobnicate"}, &out, &out); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestPrintConfig(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"run", "-print-config"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"block_size": "128M"`) {
		t.Fatalf("embedded config not printed:\n%s", out.String())
	}
}

// TestRunWithViews runs the live system with its views mounted and drives
// it with the other commands meanwhile.
func TestRunWithViews(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	dir := t.TempDir()
	cfg := `{"block_size":"2M","initial_per_node":"4M","duration":"20s","report_interval":"1s","hotplug_interval":"50ms"}`
	path := filepath.Join(dir, "c.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- runCtx(ctx, []string{"run", "-config", path, "-sysfs", mnt}, &out, &errb) }()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(mnt, "sys/devices/system/memory/block_size_bytes")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("views never appeared:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd := func(args ...string) (string, error) {
		var o, e bytes.Buffer
		err := run(args, &o, &e)
		return o.String() + e.String(), err
	}
	for _, c := range [][]string{
		{"mem", "-sysfs", mnt},
		{"slabinfo", "-sysfs", mnt},
		{"top", "-sysfs", mnt, "-n", "2", "-d", "10ms"},
		{"cgroup", "-sysfs", mnt, "list"},
		{"cgroup", "-sysfs", mnt, "create", "extra"},
		{"cgroup", "-sysfs", mnt, "set", "extra", "memory.max", "1M"},
		{"cgroup", "-sysfs", mnt, "show", "extra"},
		{"cgroup", "-sysfs", mnt, "remove", "extra"},
	} {
		if o, err := cmd(c...); err != nil {
			t.Errorf("hotslab %v: %v\n%s", c, err, o)
		}
	}
	if o, _ := cmd("mem", "-sysfs", mnt); !strings.Contains(o, "Memory block size: 2M") {
		t.Errorf("mem:\n%s", o)
	}
	if o, _ := cmd("cgroup", "-sysfs", mnt, "list"); !strings.Contains(o, "/tenant-a") {
		t.Errorf("cgroup list:\n%s", o)
	}
	if _, err := cmd("cgroup", "-sysfs", mnt, "set", "tenant-a", "memory.max", "bogus"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("set bogus: %v", err)
	}
	if _, err := cmd("offline", "-sysfs", mnt, "x"); !errors.As(err, new(usageError)) {
		t.Errorf("offline x: %v", err)
	}
	if _, err := cmd("online", "-sysfs", mnt, "0"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("online an online block: %v", err)
	}
	if _, err := cmd("mem"); !errors.As(err, new(usageError)) {
		t.Errorf("mem without -sysfs: %v", err)
	}
	cancel() // as SIGINT would
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "views mounted at "+mnt) || !strings.Contains(out.String(), "lockdep reports 0") {
		t.Errorf("run output:\n%s", out.String())
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), mnt) {
		t.Errorf("mount left behind at %s", mnt)
	}
}

func TestTortureShort(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"torture", "-duration", "1500ms", "-seed", "42"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "torture: PASS ops=") || !strings.HasSuffix(last, "violations=0 seed=42") {
		t.Fatalf("verdict line %q", last)
	}
	if err := run([]string{"torture", "-duration", "-1s"}, &out, &errb); !errors.As(err, new(usageError)) {
		t.Errorf("negative duration: %v", err)
	}
}

// The pattern check finds an overwritten object and the first violation
// is kept for the verdict.
func TestTortureFindsCorruption(t *testing.T) {
	tt := &torture{}
	buf := make([]uint64, 16)
	o := tobj{p: unsafe.Pointer(&buf[0]), size: 128, tag: 0xabc}
	fill(o)
	tt.check(o)
	if tt.violations.Load() != 0 {
		t.Fatal("intact object reported")
	}
	buf[15] = 1
	tt.check(o)
	if tt.violations.Load() != 1 || !strings.Contains(tt.first, "pattern overwritten") {
		t.Fatalf("violations %d, first %q", tt.violations.Load(), tt.first)
	}
}

// parseSize takes a decimal count with a K, M, G or T suffix and refuses
// garbage, negatives and sizes that overflow int64.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, " 2k ": 2 << 10, "128M": 128 << 20, "1G": 1 << 30, "2t": 2 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "1.5G", "0x10", "12Q", "9223372036854775807K", "8388608T"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}
