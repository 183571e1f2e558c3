// The datadriven scenarios of testdata/ (cockroachdb/datadriven): the
// allocator's state machine — a P's main, spare and remote sheaves, the
// per-node barns, the partial lists and the counters — printed after each
// step. Regenerate the expected output with
//
//	go test ./slab -run TestDataDriven -rewrite
//
// and read every block before committing it.
//
// Determinism: the scenarios run with GOMAXPROCS(1), so every goroutine
// runs on P 0 (of node 0), on a fixed memory configuration; addresses are
// never printed (objects are named x[i] by the list they were allocated
// into, and described by their node).
//
// Commands (c: a cache, x: an object list, s: a prefilled sheaf; a range
// is x[i], x[i:j], x[i:] or x[:j], or x for every live object of x; any
// command that changes something also takes `state`, to print the state
// of its cache afterwards):
//
//	new [nodes=N]                      a fresh memory system and allocator
//	new-cache name=c size=N [align=N] [hwalign]   (NoMerge: never an alias)
//	alloc c n=N as=x [node=N] [thisnode] [zero]
//	free c RANGE...                    Cache.Free, in range order
//	alloc-bulk c n=N as=x              Cache.AllocBulk
//	free-bulk c RANGE...               one Cache.FreeBulk of all the ranges
//	prefill c n=N as=s                 Cache.PrefillSheaf
//	sheaf-alloc s n=N as=x             Sheaf.Alloc
//	sheaf-free s RANGE...              Sheaf.Free
//	refill s n=N                       Sheaf.Refill
//	return s                           Sheaf.Return
//	shrink c / destroy c
//	state c                            P 0's sheaves, each node's barn and
//	                                   slabs, where the objects in use are,
//	                                   and the counters (+ change since the
//	                                   cache's previous state)
//
// A free of an object the scenario already freed is a test error, unless
// the command has `again` (a deliberate double free: the refusal is
// printed). Refused frees are printed as "refused: <fault>".

package slab

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/cockroachdb/datadriven"
	"github.com/hotslab/hotslab/mem"
)

// ddConfig is the memory of every scenario: 2 blocks of 2 MiB per node.
func ddConfig(nodes int) mem.Config {
	return mem.Config{Nodes: nodes, BlockSize: 2 << 20, InitialPerNode: 4 << 20, MaxBlocks: 64,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// ddList is a named list of objects allocated from one cache.
type ddList struct {
	c    *Cache
	objs []unsafe.Pointer
	live []bool
}

// ddSheaf is a named prefilled sheaf.
type ddSheaf struct {
	c  *Cache
	sh *Sheaf
}

// ddSlab is the state of one scenario file.
type ddSlab struct {
	t       *testing.T
	sys     *mem.System
	a       *Allocator
	caches  map[string]*Cache
	lists   map[string]*ddList
	sheaves map[string]*ddSheaf
	refused []string
	last    map[*kmemCache][NumStats]uint64
}

func (e *ddSlab) open(nodes int) {
	e.close()
	sys, err := mem.New(ddConfig(nodes))
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := New(sys, &Options{
		OnInvalidFree: func(f *InvalidFree) { e.refused = append(e.refused, f.Fault) },
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		sys.Close()
		e.t.Fatal(err)
	}
	e.sys, e.a = sys, a
	e.caches = map[string]*Cache{}
	e.lists = map[string]*ddList{}
	e.sheaves = map[string]*ddSheaf{}
	e.last = map[*kmemCache][NumStats]uint64{}
	e.refused = nil
}

func (e *ddSlab) close() {
	if e.a != nil {
		e.a.Close()
		e.sys.Close()
		e.a, e.sys = nil, nil
	}
}

func (e *ddSlab) cmd(td *datadriven.TestData) string {
	if e.a == nil && td.Cmd != "new" {
		e.open(2)
	}
	var c *Cache // the cache to print the state of (`state`)
	out := e.run(td, &c)
	if len(e.refused) > 0 {
		var b strings.Builder
		if out != "" {
			b.WriteString(out + "\n")
		}
		for i := 0; i < len(e.refused); {
			j := i
			for j < len(e.refused) && e.refused[j] == e.refused[i] {
				j++
			}
			fmt.Fprintf(&b, "refused: %s", e.refused[i])
			if j-i > 1 {
				fmt.Fprintf(&b, " (x%d)", j-i)
			}
			b.WriteString("\n")
			i = j
		}
		e.refused = nil
		out = strings.TrimSuffix(b.String(), "\n")
	}
	if c != nil && td.Cmd != "state" && ddFlag(td, "state") {
		out += "\n" + e.state(c)
	}
	return out
}

func (e *ddSlab) run(td *datadriven.TestData, cp **Cache) string {
	switch td.Cmd {
	case "new":
		e.open(e.argInt(td, "nodes", 2))
		return fmt.Sprintf("nodes=%d P0 caches node %d", e.sys.NumNodes(), e.a.procNode[0].Load())

	case "new-cache":
		name := e.argStr(td, "name")
		o := &CacheOptions{Flags: NoMerge, Align: e.argInt(td, "align", 0)}
		if ddFlag(td, "hwalign") {
			o.Flags |= HWCacheAlign
		}
		c, err := e.a.NewCache(name, e.argInt(td, "size", 0), o)
		if err != nil {
			return ddErr(err)
		}
		e.caches[name] = c
		st := c.Stats()
		return fmt.Sprintf("%s: object %d, slot %d, %d objects/slab (order %d), sheaf capacity %d, min_partial %d",
			name, st.ObjectSize, st.Size, st.ObjsPerSlab, st.Order, st.SheafCap, c.c.minPartial)

	case "alloc":
		c := e.cache(td)
		*cp = c
		name, l := e.list(td, c)
		from := len(l.objs)
		node := e.argInt(td, "node", mem.NumaNoNode)
		var gfp GFP
		if ddFlag(td, "thisnode") {
			gfp |= ThisNode
		}
		if ddFlag(td, "zero") {
			gfp |= Zero
		}
		var err error
		for range e.argInt(td, "n", 1) {
			var p unsafe.Pointer
			if node == mem.NumaNoNode && gfp == 0 {
				p, err = c.Alloc()
			} else {
				p, err = c.AllocNode(node, gfp)
			}
			if err != nil {
				break
			}
			e.add(l, p)
		}
		return e.allocated(name, l, from, err)

	case "free":
		c := e.cache(td)
		*cp = c
		for _, p := range e.take(td, e.ranges(td), c) {
			c.Free(p)
		}
		return "ok"

	case "alloc-bulk":
		c := e.cache(td)
		*cp = c
		name, l := e.list(td, c)
		from := len(l.objs)
		dst := make([]unsafe.Pointer, e.argInt(td, "n", 1))
		err := c.AllocBulk(dst)
		if err == nil {
			for _, p := range dst {
				e.add(l, p)
			}
		}
		return e.allocated(name, l, from, err)

	case "free-bulk":
		c := e.cache(td)
		*cp = c
		c.FreeBulk(e.take(td, e.ranges(td), c))
		return "ok"

	case "prefill":
		c := e.cache(td)
		*cp = c
		name := e.argStr(td, "as")
		sh, err := c.PrefillSheaf(e.argInt(td, "n", 1))
		if err != nil {
			return ddErr(err)
		}
		e.sheaves[name] = &ddSheaf{c: c, sh: sh}
		return fmt.Sprintf("%s: %d/%d", name, sh.Len(), sh.Cap())

	case "sheaf-alloc":
		s := e.sheaf(td)
		*cp = s.c
		name, l := e.list(td, s.c)
		from := len(l.objs)
		for range e.argInt(td, "n", 1) {
			p := s.sh.Alloc()
			if p == nil {
				break
			}
			e.add(l, p)
		}
		return fmt.Sprintf("%s\n%s: %d/%d", e.allocated(name, l, from, nil), e.first(td), s.sh.Len(), s.sh.Cap())

	case "sheaf-free":
		s := e.sheaf(td)
		*cp = s.c
		for _, p := range e.take(td, e.ranges(td), s.c) {
			s.sh.Free(p)
		}
		return fmt.Sprintf("%s: %d/%d", e.first(td), s.sh.Len(), s.sh.Cap())

	case "refill":
		s := e.sheaf(td)
		*cp = s.c
		err := s.sh.Refill(e.argInt(td, "n", 1))
		out := fmt.Sprintf("%s: %d/%d", e.first(td), s.sh.Len(), s.sh.Cap())
		if err != nil {
			out += "\n" + ddErr(err)
		}
		return out

	case "return":
		s := e.sheaf(td)
		*cp = s.c
		s.sh.Return()
		delete(e.sheaves, e.first(td))
		return "ok"

	case "shrink":
		c := e.cache(td)
		*cp = c
		c.Shrink()
		return "ok"

	case "destroy":
		c := e.cache(td)
		*cp = c
		if err := c.Destroy(); err != nil {
			return ddErr(err)
		}
		return "ok"

	case "state":
		return e.state(e.cache(td))

	}
	e.t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	return ""
}

func TestDataDriven(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if strings.Contains(path, "/fuzz/") {
			t.Skip("a fuzz corpus, not a scenario")
		}
		e := &ddSlab{t: t}
		defer e.close()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return e.cmd(td)
		})
	})
}
