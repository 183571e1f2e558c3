package slab

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// Every line must parse with the format slabtop uses.
func TestSlabinfoFormat(t *testing.T) {
	e := newEnv(t, memCfg())
	c := e.cache("slabinfo-test", 64, &CacheOptions{Flags: NoMerge})
	var objs []unsafe.Pointer
	for i := 0; i < 100; i++ {
		p, _ := c.Alloc()
		objs = append(objs, p)
	}
	var buf bytes.Buffer
	if err := e.a.WriteSlabinfo(&buf); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Scan()
	if sc.Text() != "slabinfo - version: 2.1" {
		t.Fatalf("first line %q", sc.Text())
	}
	found := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		var name string
		var active, num, objsize, perslab, pages, l, bc, sf, as, ns, sa uint64
		n, err := fmt.Sscanf(line, "%s %d %d %d %d %d : tunables %d %d %d : slabdata %d %d %d",
			&name, &active, &num, &objsize, &perslab, &pages, &l, &bc, &sf, &as, &ns, &sa)
		if err != nil || n != 12 {
			t.Fatalf("line %q: %v", line, err)
		}
		if name == "slabinfo-test" {
			found = true
			if objsize != 64 || perslab != 64 || pages != 1 || active < 100 || num < active || as != ns || num != ns*perslab {
				t.Fatalf("bad numbers: %q", line)
			}
		}
	}
	if !found {
		t.Fatal("cache missing")
	}
	for _, p := range objs {
		c.Free(p)
	}
}
