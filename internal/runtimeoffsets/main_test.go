package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestMatchesAssembly builds the command and checks that what it prints
// for this Go release is what slab/fast_amd64.s uses, when the release is
// one fast_amd64.s is built for.
func TestMatchesAssembly(t *testing.T) {
	if runtime.GOARCH != "amd64" || !strings.HasPrefix(runtime.Version(), "go1.26") {
		t.Skipf("slab's assembly is for go1.26 amd64, not %s %s", runtime.Version(), runtime.GOARCH)
	}
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "ro")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	asm, err := os.ReadFile("../../slab/fast_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "#define") && !strings.Contains(string(asm), line+"\n") {
			t.Errorf("slab/fast_amd64.s lacks %q (this release's offset)", line)
		}
	}
}
