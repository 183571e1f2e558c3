// Command runtimeoffsets prints the offsets of the runtime fields that
// slab's assembly fast paths read (g.m, m.p, p.id: the chain behind
// runtime.procPin), as the #defines of slab/fast_amd64.s, for the Go
// release that builds it. They come from the DWARF of its own binary, so
// build it (go run drops DWARF) with the new release:
//
//	go build -o /tmp/runtimeoffsets ./internal/runtimeoffsets && /tmp/runtimeoffsets
//
// then copy the three values into slab/fast_amd64.s, widen the go1.N
// build tags of fast_amd64.go, fast_amd64.s and fast_other.go, and run
// go test -run TestProcID ./slab/ (it fails if the chain disagrees with
// runtime.procPin on any P).
package main

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"os"
	"runtime"
)

func main() {
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		fail(err)
	}
	d, err := f.DWARF()
	if err != nil {
		fail(fmt.Errorf("%w (build with go build, not go run: it keeps DWARF)", err))
	}
	want := map[string]string{"runtime.g": "m", "runtime.m": "p", "runtime.p": "id"}
	got := map[string]int64{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			fail(err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		field, ok := want[name]
		if !ok || !e.Children {
			continue
		}
		for {
			c, err := r.Next()
			if err != nil {
				fail(err)
			}
			if c == nil || c.Tag == 0 {
				break
			}
			if c.Tag == dwarf.TagMember && c.Val(dwarf.AttrName) == field {
				got[name], _ = c.Val(dwarf.AttrDataMemberLoc).(int64)
			}
			if c.Children {
				r.SkipChildren()
			}
		}
	}
	if len(got) != len(want) {
		fail(fmt.Errorf("found %v of %v in the DWARF", got, want))
	}
	fmt.Printf("// %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("#define G_M %d\n#define M_P %d\n#define P_ID %d\n", got["runtime.g"], got["runtime.m"], got["runtime.p"])
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "runtimeoffsets:", err)
	os.Exit(1)
}
