// The datadriven scenarios' arguments: object ranges, lists, caches and
// sheaves by name, and errors as the scenarios print them.

package slab

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/cockroachdb/datadriven"
)

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
