package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }

func TestRunSmall(t *testing.T) {
	cfg := `{"block_size":"2M","initial_per_node":"4M","duration":"700ms","report_interval":"300ms","hotplug_interval":"20ms"}`
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run([]string{"run", "-config", path}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	s := out.String()
	for _, want := range []string{"slabinfo - version: 2.1", "inode_cache ", "kmalloc-64 ", "memory0 ", "all objects freed, caches destroyed"} {
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
