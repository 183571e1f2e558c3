// The datadriven scenarios' `state`: P 0's sheaves, the barns, the
// partial lists, where the objects in use are, and the counters.

package slab

import (
	"fmt"
	"strings"
	"unsafe"
)

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
