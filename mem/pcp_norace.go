//go:build !race

package mem

// Per-P list words are plain memory: only the owning pinned P, or the
// drainer after a grace period, touches them.

func pload(p *uintptr) uintptr     { return *p }
func pstore(p *uintptr, v uintptr) { *p = v }
