package main

// Regression tests from an adversarial review of the command.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The package doc (main.go:12) documents
//
//	hotslab online|offline -sysfs DIR BLOCK [-zone kernel|movable]
//
// but the flag package stops at BLOCK: -zone after it is a usage error.
func TestRegressionZoneAfterBlockAsDocumented(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "sys/devices/system/memory/memory3")
	os.MkdirAll(md, 0o755)
	os.WriteFile(filepath.Join(dir, "sys/devices/system/memory/block_size_bytes"), []byte("200000\n"), 0o644)
	os.WriteFile(filepath.Join(md, "state"), []byte("offline\n"), 0o644)
	var out, errb bytes.Buffer
	err := run([]string{"online", "-sysfs", dir, "3", "-zone", "movable"}, &out, &errb)
	var ue usageError
	if errors.As(err, &ue) {
		t.Errorf("documented form rejected as bad usage: %v", err)
	}
}

// -sysfs DIR that cannot be mounted: run says "views not mounted" and
// carries on; the run exits 0 although what was asked for never happened.
func TestRegressionUnmountableSysfsFails(t *testing.T) {
	cfg := `{"block_size":"2M","initial_per_node":"4M","duration":"300ms","report_interval":"200ms","hotplug_interval":"50ms"}`
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte(cfg), 0o644)
	var out, errb bytes.Buffer
	err := run([]string{"run", "-config", path, "-sysfs", "/nonexistent/hotslab-review"}, &out, &errb)
	if err == nil && strings.Contains(out.String(), "views not mounted") {
		t.Errorf("run with an unmountable -sysfs succeeded (exit 0): %q", firstLine(out.String()))
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
