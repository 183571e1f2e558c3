package lockdep

// Dependency types of the 2020 recursive-read rules. The first letter is
// how the holder of the first lock holds it (E exclusive, S shared), the
// second how the second lock is waited for (R recursive reader, N other).
const (
	depEN uint8 = 1 << iota
	depER
	depSN
	depSR
)

func depType(held, next Kind) uint8 {
	if held == Write {
		if next == RecursiveRead {
			return depER
		}
		return depEN
	}
	if next == RecursiveRead {
		return depSR
	}
	return depSN
}

func depBit(t uint8) int {
	switch t {
	case depEN:
		return 0
	case depER:
		return 1
	case depSN:
		return 2
	}
	return 3
}

var depNames = [4]string{"-(EN)->", "-(ER)->", "-(SN)->", "-(SR)->"}

// validate checks the acquisition of n (kind k) by t against the locks t
// holds and records the new dependencies. It returns false if it reported a
// problem, so the chain is not cached. Kernel: validate_chain().
func validate(t *task, n *node, inst uintptr, k Kind, try bool) bool {
	graphMu.Lock()
	if k == Write {
		n.usedWrite = true
	} else {
		n.usedRead = true
	}
	if try {
		// A trylock cannot deadlock, so it adds no dependency on n
		// (locks taken later still depend on it).
		graphMu.Unlock()
		return true
	}
	// Same class held: only a recursive read under another read is fine.
	// Kernel: check_deadlock().
	for i := t.depth - 1; i >= 0; i-- {
		h := &t.held[i]
		if h.node != n {
			continue
		}
		if k == RecursiveRead && h.kind != Write {
			continue
		}
		graphMu.Unlock()
		reportRecursive(t, n, k, h)
		return false
	}
	var stack []uintptr
	for i := t.depth - 1; i >= 0; i-- {
		h := &t.held[i]
		if h.node == n {
			continue // recursive read of a read-held class: no edge
		}
		typ := depType(h.kind, k)
		e := findEdge(h.node, n)
		if e != nil && e.mask&typ != 0 {
			continue
		}
		if path := findStrongPath(n, h.node, k, h.kind); path != nil {
			graphMu.Unlock()
			reportCircular(t, n, k, h, path)
			return false
		}
		if stack == nil {
			stack = callers(4)
		}
		if e == nil {
			e = &edge{from: h.node, to: n}
			h.node.out = append(h.node.out, e)
		}
		e.mask |= typ
		e.stack[depBit(typ)] = stack
	}
	graphMu.Unlock()
	return true
}

func findEdge(from, to *node) *edge {
	for _, e := range from.out {
		if e.to == to {
			return e
		}
	}
	return nil
}

// step is one edge of a path found by the search, with the type used.
type step struct {
	e   *edge
	typ uint8
}

// findStrongPath looks for a strong path from next back to prev that,
// closed by the new edge prev -> next (prev held as heldKind, next taken as
// k), forms a strong cycle: a deadlock. A strong path never has an -(xR)->
// edge followed by an -(Sx)-> edge. Kernel: check_noncircular() / __bfs().
func findStrongPath(next, prev *node, k Kind, heldKind Kind) []step {
	// BFS state: node and whether the edge into it was -(xR)->, in which
	// case only -(Ex)-> edges may leave it. (v, false) dominates (v, true).
	type state struct {
		n   *node
		inR bool
	}
	type visit struct {
		from state
		via  step
		seen bool
	}
	nn := len(nodes)
	vis := make([][2]visit, nn)
	idx := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	startR := k == RecursiveRead
	start := state{next, startR}
	vis[next.id][idx(startR)].seen = true
	queue := []state{start}
	closes := func(s state) bool {
		// last edge -(xR)-> into prev then new edge -(Sx)->: not strong.
		return s.n == prev && !(s.inR && heldKind != Write)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if closes(s) {
			// Reconstruct next -> ... -> prev.
			var path []step
			for cur := s; cur != start; {
				v := vis[cur.n.id][idx(cur.inR)]
				path = append(path, v.via)
				cur = v.from
			}
			for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
				path[i], path[j] = path[j], path[i]
			}
			return path
		}
		for _, e := range s.n.out {
			m := e.mask
			if s.inR {
				m &= depEN | depER // after -(xR)-> only -(Ex)->
			}
			if m == 0 {
				continue
			}
			var ns state
			var typ uint8
			switch {
			case m&depEN != 0:
				ns, typ = state{e.to, false}, depEN
			case m&depSN != 0:
				ns, typ = state{e.to, false}, depSN
			case m&depER != 0:
				ns, typ = state{e.to, true}, depER
			default:
				ns, typ = state{e.to, true}, depSR
			}
			v := &vis[e.to.id][idx(ns.inR)]
			if v.seen {
				continue
			}
			if ns.inR && vis[e.to.id][0].seen {
				continue // dominated
			}
			*v = visit{from: s, via: step{e, typ}, seen: true}
			queue = append(queue, ns)
		}
	}
	return nil
}
