package sysfs_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotslab/hotslab/sysfs"
)

// A process that mounts the views and is killed leaves the kernel a dead
// mount; CleanStaleMount (which MountTree calls on its directory first)
// takes it away.
func TestStaleMountAfterCrash(t *testing.T) {
	if dir := os.Getenv("HOTSLAB_SYSFS_CRASH_DIR"); dir != "" {
		// The child: mount, then die without unmounting.
		if _, err := sysfs.MountTree(dir, sysfs.NewTree()); err != nil {
			os.Exit(3)
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestStaleMountAfterCrash$")
	cmd.Env = append(os.Environ(), "HOTSLAB_SYSFS_CRASH_DIR="+dir)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		t.Skip("the child could not mount FUSE")
	}
	mounted := func() bool {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Contains(string(b), " "+dir+" ")
	}
	if !mounted() {
		t.Fatalf("the crashed child left no mount (%v): nothing to clean", err)
	}
	cleaned, err := sysfs.CleanStaleMount(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cleaned || mounted() {
		t.Fatalf("stale mount not cleaned (%v)", cleaned)
	}
}
