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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"syscall"
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

func ddErr(err error) string {
	var errno syscall.Errno
	name := "?"
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOMEM:
			name = "ENOMEM"
		case syscall.EBUSY:
			name = "EBUSY"
		case syscall.EINVAL:
			name = "EINVAL"
		case syscall.EEXIST:
			name = "EEXIST"
		case syscall.EPERM:
			name = "EPERM"
		}
	}
	return "error: " + name + ": " + err.Error()
}

// ddArg returns the key=value argument key (not a bare name that happens
// to be spelled like a key, such as a cache called n).
func ddArg(td *datadriven.TestData, key string) (datadriven.CmdArg, bool) {
	for _, a := range td.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			return a, true
		}
	}
	return datadriven.CmdArg{}, false
}

// ddFlag reports whether a bare argument key follows the command's first
// (positional) argument.
func ddFlag(td *datadriven.TestData, key string) bool {
	for i, a := range td.CmdArgs {
		if i > 0 && a.Key == key && len(a.Vals) == 0 {
			return true
		}
	}
	return false
}

func (e *ddSlab) argInt(td *datadriven.TestData, key string, def int) int {
	if a, ok := ddArg(td, key); ok {
		n, err := strconv.Atoi(a.Vals[0])
		if err != nil {
			e.t.Fatalf("%s: bad %s=%q", td.Pos, key, a.Vals[0])
		}
		return n
	}
	return def
}

func (e *ddSlab) argStr(td *datadriven.TestData, key string) string {
	a, ok := ddArg(td, key)
	if !ok || len(a.Vals) != 1 {
		e.t.Fatalf("%s: %s=... needed", td.Pos, key)
	}
	return a.Vals[0]
}

// first returns the command's first argument, a bare name.
func (e *ddSlab) first(td *datadriven.TestData) string {
	if len(td.CmdArgs) == 0 || len(td.CmdArgs[0].Vals) != 0 {
		e.t.Fatalf("%s: %s needs a name first", td.Pos, td.Cmd)
	}
	return td.CmdArgs[0].Key
}

func (e *ddSlab) cache(td *datadriven.TestData) *Cache {
	name := e.first(td)
	c, ok := e.caches[name]
	if !ok {
		e.t.Fatalf("%s: no cache %q", td.Pos, name)
	}
	return c
}

func (e *ddSlab) sheaf(td *datadriven.TestData) *ddSheaf {
	name := e.first(td)
	s, ok := e.sheaves[name]
	if !ok {
		e.t.Fatalf("%s: no sheaf %q", td.Pos, name)
	}
	return s
}

// list returns the list as= names, created for c if new.
func (e *ddSlab) list(td *datadriven.TestData, c *Cache) (string, *ddList) {
	name := e.argStr(td, "as")
	l, ok := e.lists[name]
	if !ok {
		l = &ddList{c: c}
		e.lists[name] = l
	} else if l.c.c != c.c {
		e.t.Fatalf("%s: list %s is of another cache", td.Pos, name)
	}
	return name, l
}

// ddRef is one object of a list named by a range argument.
type ddRef struct {
	l *ddList
	i int
}

// ranges resolves the range arguments (every bare argument after the
// first that names a list).
func (e *ddSlab) ranges(td *datadriven.TestData) []ddRef {
	var out []ddRef
	for _, a := range td.CmdArgs[1:] {
		if len(a.Vals) != 0 {
			continue
		}
		name, spec, hasSpec := strings.Cut(a.Key, "[")
		l, ok := e.lists[name]
		if !ok {
			continue // a flag
		}
		if !hasSpec {
			for i, live := range l.live {
				if live {
					out = append(out, ddRef{l, i})
				}
			}
			continue
		}
		spec = strings.TrimSuffix(spec, "]")
		lo, hi, isRange := strings.Cut(spec, ":")
		from, to := 0, len(l.objs)
		var err error
		if lo != "" {
			if from, err = strconv.Atoi(lo); err != nil {
				e.t.Fatalf("%s: bad range %s", td.Pos, a.Key)
			}
		}
		switch {
		case !isRange:
			to = from + 1
		case hi != "":
			if to, err = strconv.Atoi(hi); err != nil {
				e.t.Fatalf("%s: bad range %s", td.Pos, a.Key)
			}
		}
		if from < 0 || to > len(l.objs) || from > to {
			e.t.Fatalf("%s: range %s outside %s[0:%d]", td.Pos, a.Key, name, len(l.objs))
		}
		for i := from; i < to; i++ {
			out = append(out, ddRef{l, i})
		}
	}
	if len(out) == 0 {
		e.t.Fatalf("%s: no objects named", td.Pos)
	}
	return out
}

// take marks the objects freed and returns them; an object already freed
// is a test error unless the command says `again`.
func (e *ddSlab) take(td *datadriven.TestData, refs []ddRef, c *Cache) []unsafe.Pointer {
	objs := make([]unsafe.Pointer, len(refs))
	for j, r := range refs {
		if c != nil && r.l.c.c != c.c {
			e.t.Fatalf("%s: freeing an object of another cache", td.Pos)
		}
		if !r.l.live[r.i] && !ddFlag(td, "again") {
			e.t.Fatalf("%s: object [%d] freed already (say `again` to free it twice)", td.Pos, r.i)
		}
		r.l.live[r.i] = false
		objs[j] = r.l.objs[r.i]
	}
	return objs
}

func (e *ddSlab) add(l *ddList, p unsafe.Pointer) {
	l.objs = append(l.objs, p)
	l.live = append(l.live, true)
}

// nodes describes where objs are: "node0=3 node1=2".
func (e *ddSlab) nodes(objs []unsafe.Pointer) string {
	count := make([]int, e.sys.NumNodes())
	for _, p := range objs {
		count[e.sys.PageNode(uintptr(p))]++
	}
	var parts []string
	for n, k := range count {
		if k > 0 {
			parts = append(parts, fmt.Sprintf("node%d=%d", n, k))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// allocated reports objects appended to list name from index from.
func (e *ddSlab) allocated(name string, l *ddList, from int, err error) string {
	out := fmt.Sprintf("%s[%d:%d]: %s", name, from, len(l.objs), e.nodes(l.objs[from:]))
	if err != nil {
		out += "\n" + ddErr(err)
	}
	return out
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

// ddSheafStr describes a sheaf: "n/cap" (with its node if not want), or "-".
func ddSheafStr(sh *objSheaf, n, want int) string {
	if sh == nil {
		return "-"
	}
	s := fmt.Sprintf("%d/%d", n, len(sh.objs))
	if sh.node != want {
		s += fmt.Sprintf(" (node %d)", sh.node)
	}
	return s
}

// state prints P 0's sheaves, each node's barn and slabs, the objects in
// use by where they are, and the counters. It checks the invariants it
// can see: no other P holds anything (everything runs on P 0); every
// object in use is in the user's hands, a sheaf or a barn.
func (e *ddSlab) state(c *Cache) string {
	k := c.c
	a := k.a
	var b strings.Builder

	// Per-P state: owned by a flusher after a grace period (flushing
	// every cache, under slab_mutex, as the hotplug callbacks do).
	var cached int
	a.slabMutex.Lock()
	a.beginFlush()
	pid := 0
	pc := &k.pcpu[pid]
	raceAcquire(unsafe.Pointer(pc))
	my := k.nodeOfP(pid)
	if pc.main == nil && (pc.n != 0 || pc.objs != nil) {
		e.t.Errorf("P0: no main sheaf but n=%d objs=%d", pc.n, len(pc.objs))
	}
	// main's own count is stale while it is the P's: pc.n is the count.
	spareN := 0
	if pc.spare != nil {
		spareN = pc.spare.n
	}
	fmt.Fprintf(&b, "P0 node%d: main %s, spare %s", my, ddSheafStr(pc.main, pc.n, my), ddSheafStr(pc.spare, spareN, my))
	cached += pc.n + spareN
	if r := pc.remote; r != nil {
		fmt.Fprintf(&b, ", remote node%d %d/%d\n", r.node, r.n, len(r.objs))
		cached += r.n
	} else {
		b.WriteString(", remote -\n")
	}
	raceReleaseMerge(unsafe.Pointer(pc))
	for p := 1; p < len(k.pcpu); p++ {
		q := &k.pcpu[p]
		raceAcquire(unsafe.Pointer(q))
		if q.n != 0 || (q.spare != nil && q.spare.n != 0) || (q.remote != nil && q.remote.n != 0) {
			e.t.Errorf("P%d holds objects, but the scenarios run on P0 only", p)
		}
		raceReleaseMerge(unsafe.Pointer(q))
	}
	a.endFlush()
	a.slabMutex.Unlock()

	var inUse int64
	var barned int
	for n := range k.nodes {
		cn := k.nodes[n].Load()
		if cn == nil {
			fmt.Fprintf(&b, "node%d: no structure\n", n)
			continue
		}
		cn.barnLock.Lock()
		full, empty := len(cn.full), len(cn.empty)
		var notFull []string
		for _, sh := range cn.full {
			barned += sh.n
			if sh.n != len(sh.objs) {
				notFull = append(notFull, fmt.Sprintf("%d/%d", sh.n, len(sh.objs)))
			}
		}
		cn.barnLock.Unlock()
		if len(notFull) > 0 {
			e.t.Errorf("node%d: barn full sheaves that are not full: %v", n, notFull)
		}

		cn.listLock.Lock()
		var partial []string
		var onList int
		for s := cn.partial.first(a); s != nil; s = a.nextOf(s) {
			partial = append(partial, fmt.Sprintf("%d/%d", s.inuse, k.objects))
			onList++
		}
		slabs, free := cn.nrSlabs, cn.nrFree
		if onList != cn.partial.n {
			e.t.Errorf("node%d: partial list has %d slabs, count says %d", n, onList, cn.partial.n)
		}
		cn.listLock.Unlock()
		inUse += slabs*int64(k.objects) - free
		fmt.Fprintf(&b, "node%d: barn full %d/%d empty %d/%d; slabs %d, free %d, partial [%s]\n",
			n, full, maxBarnFull, empty, maxBarnEmpty, slabs, free, strings.Join(partial, " "))
	}

	var user, prefilled int
	for _, l := range e.lists {
		if l.c.c != k {
			continue
		}
		for _, live := range l.live {
			if live {
				user++
			}
		}
	}
	for _, s := range e.sheaves {
		if s.c.c == k {
			prefilled += s.sh.Len()
		}
	}
	fmt.Fprintf(&b, "in use %d = user %d + P0 %d + barns %d + prefilled %d\n", inUse, user, cached, barned, prefilled)
	if inUse != int64(user+cached+barned+prefilled) {
		e.t.Errorf("objects in use (%d) are not user %d + P0 %d + barns %d + prefilled %d",
			inUse, user, cached, barned, prefilled)
	}

	st := c.Stats()
	prev := e.last[k]
	e.last[k] = st.Counters
	var parts []string
	for s := Stat(0); s < NumStats; s++ {
		v := st.Counters[s]
		if v == 0 {
			continue
		}
		p := fmt.Sprintf("%v=%d", s, v)
		if d := v - prev[s]; d != 0 {
			p += fmt.Sprintf("(+%d)", d)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	b.WriteString("counters:")
	width := len("counters:")
	for _, p := range parts {
		if width+1+len(p) > 78 {
			b.WriteString("\n ")
			width = 1
		}
		b.WriteString(" " + p)
		width += 1 + len(p)
	}
	return b.String()
}

func TestDataDriven(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := &ddSlab{t: t}
		defer e.close()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return e.cmd(td)
		})
	})
}
