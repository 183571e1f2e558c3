package sysfs_test

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/hotslab/hotslab/sysfs"
)

func itoa(i int) string { return strconv.Itoa(i) }

func runtimeGosched() { runtime.Gosched() }

// mountTree mounts t on a temporary directory for the test, or skips the
// test where FUSE is not available.
func mountTree(t *testing.T, tree *sysfs.Tree) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: FUSE tests skipped")
	}
	dir := t.TempDir()
	m, err := sysfs.MountTree(dir, tree)
	if err != nil {
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// needUnshare skips the test unless this process may make a private mount
// namespace (root, or CAP_SYS_ADMIN): the tools run only in one.
func needUnshare(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"unshare"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("unshare -m not permitted here (%v): the tool tests need a private mount namespace", err)
	}
}
