//go:build linux && !race

// Per-P list words and the fast paths' page-state changes outside race
// builds. The list words are plain memory: only the owning pinned P, or
// the drainer after a grace period, touches them.

package mem

func pload(p *uintptr) uintptr     { return *p }
func pstore(p *uintptr, v uintptr) { *p = v }

// setStateFast is the state change of a page the calling P owns on its
// per-P fast path (popped from, or about to be pushed on, its list). A
// plain store: every reader that must see it exactly (the offline scan of
// an isolated block) is ordered after it by the drain's stop-the-world
// grace period, and the rest (Blocks, FreePages' sanity check) read
// single aligned words that cannot tear.
func setStateFast(p *Page, v uint32) { p.state = v }

// claimFast turns the allocated head p (state old) into a page being
// freed. A plain compare and store: it catches every sequential double
// free; two goroutines freeing one page at the same instant is a caller
// bug it does not promise to catch (nor does the kernel).
func claimFast(p *Page, old, v uint32) bool {
	if p.state != old {
		return false
	}
	p.state = v
	return true
}
