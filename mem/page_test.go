//go:build linux

// Tests of Page and the address ↔ Page ↔ pfn translations, the
// Migrator side table, and the vmemmap of removed blocks.

package mem

import (
	"errors"
	"reflect"
	"testing"
	"unsafe"
)

// hasPointers reports whether a value of type t contains a word the
// garbage collector scans.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Slice, reflect.Map,
		reflect.Interface, reflect.Chan, reflect.Func, reflect.String:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// TestPagePointerFree checks that struct page costs the collector nothing:
// no field holds a pointer, so the per-block Page arrays are noscan.
func TestPagePointerFree(t *testing.T) {
	pt := reflect.TypeFor[Page]()
	if hasPointers(pt) {
		for i := range pt.NumField() {
			if f := pt.Field(i); hasPointers(f.Type) {
				t.Errorf("Page.%s (%v) contains a pointer", f.Name, f.Type)
			}
		}
	}
	if got := unsafe.Sizeof(Page{}); got > 48 {
		t.Errorf("sizeof(Page) = %d, want <= 48", got)
	}
}

// TestPageBlockAddr checks PageAddr (derived from the page's index in its
// block and the sentinel), PFNOf, PFNAddr and PFNPage against PageOf for
// every page of every block.
func TestPageBlockAddr(t *testing.T) {
	s := newTest(t, Config{Nodes: 2, BlockSize: 1 << 20, InitialPerNode: 2 << 20, MaxBlocks: 16})
	blocks := s.Blocks()
	if len(blocks) != 4 {
		t.Fatalf("%d blocks, want 4", len(blocks))
	}
	for _, bi := range blocks {
		start := s.Base() + uintptr(bi.PhysAddr)
		for off := uintptr(0); off < uintptr(s.BlockSize()); off += PageSize {
			a := start + off
			pg := s.PageOf(a)
			if s.PageAddr(pg) != a || s.BlockOf(a) != bi.Index || s.PageNode(a) != bi.Node {
				t.Fatalf("page %#x: PageAddr %#x BlockOf %d PageNode %d, want block %d node %d",
					a, s.PageAddr(pg), s.BlockOf(a), s.PageNode(a), bi.Index, bi.Node)
			}
			pfn := s.PFNOf(a)
			if s.PFNAddr(pfn) != a || s.PFNPage(pfn) != pg {
				t.Fatalf("page %#x: pfn %d maps back to %#x / another Page", a, pfn, s.PFNAddr(pfn))
			}
			if s.PageOf(a+PageSize-1) != pg {
				t.Fatalf("page %#x: last byte maps to another Page", a)
			}
		}
	}
}

// TestRangeLimit checks that New refuses a range of 2^32 pages or more
// (free-list links are uint32 page frame numbers).
func TestRangeLimit(t *testing.T) {
	if s, err := New(Config{BlockSize: 1 << 30, MaxBlocks: 1 << 14, InitialPerNode: -1}); err == nil {
		s.Close()
		t.Fatal("New accepted a 16 TiB range")
	}
}

type testMigrator struct {
	s     *System
	calls int
	moved map[uintptr]uintptr // old -> new
	// during, if set, runs inside MigratePage first; if it returns an
	// error MigratePage fails with it.
	during func(old, new uintptr) error
}

func (m *testMigrator) MigratePage(old, new uintptr, order int) error {
	m.calls++
	if m.during != nil {
		if err := m.during(old, new); err != nil {
			return err
		}
	}
	m.moved[old] = new
	return nil
}

func migCount(s *System) int {
	n := 0
	s.migs.Range(func(any, any) bool { n++; return true })
	return n
}

// TestMigratorSideTable checks that Migrators live only as long as their
// allocation: FreePages and SetMigrator(nil) drop them, migration moves
// them to the new page, and the MigratePage-vs-FreePages race (the owner
// freed old before MigratePage) leaves nothing behind.
func TestMigratorSideTable(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 1 << 20, InitialPerNode: 2 << 20, MaxBlocks: 4})
	m := &testMigrator{s: s, moved: map[uintptr]uintptr{}}

	// Free and clear drop the entry (order 0: FreePages leaves the fast path).
	for _, order := range []int{0, 2} {
		a, err := s.AllocPages(0, order, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.SetMigrator(a+123, m) // any address inside the head page
		if s.migrator(a, s.PageOf(a).loadState()) != m || s.PageOf(a).Flags() != 0 {
			t.Fatalf("order %d: migrator not set or leaks into Flags", order)
		}
		if err := s.FreePages(a, order); err != nil {
			t.Fatal(err)
		}
		if n := migCount(s); n != 0 {
			t.Fatalf("order %d: %d migrator entries after FreePages", order, n)
		}
		a, _ = s.AllocPages(0, order, GFPMovable)
		s.SetMigrator(a, m)
		s.SetMigrator(a, nil)
		if n := migCount(s); n != 0 || s.PageOf(a).loadState()&pgMigrator != 0 {
			t.Fatalf("order %d: SetMigrator(nil) left %d entries", order, n)
		}
		if s.PageOf(a).Flags() != GFPMovable {
			t.Fatalf("order %d: Flags %v", order, s.PageOf(a).Flags())
		}
		s.FreePages(a, order)
	}
	if err := s.setMigrator(s.Base()+3*PageSize, m); err == nil || migCount(s) != 0 {
		t.Fatal("SetMigrator of a free page accepted")
	}

	ctx := t.Context()
	// Migration moves the Migrator to the new page.
	a, _ := s.AllocPages(0, 1, 0)
	s.SetMigrator(a, m)
	blk := s.BlockOf(a)
	if err := s.Offline(ctx, blk); err != nil {
		t.Fatal(err)
	}
	na, ok := m.moved[a]
	if !ok || s.BlockOf(na) == blk || s.PageOf(na).Order() != 1 {
		t.Fatalf("not migrated: %#x -> %#x", a, na)
	}
	if s.migrator(na, s.PageOf(na).loadState()) != m || migCount(s) != 1 {
		t.Fatalf("migrator not moved to %#x (%d entries)", na, migCount(s))
	}
	if err := s.Online(ctx, blk, OnlineKernel); err != nil {
		t.Fatal(err)
	}

	// The owner frees old before MigratePage, which then fails: the
	// offline completes, old and the target are free, no entry is left.
	s.FreePages(na, 1)
	a, _ = s.AllocPages(0, 0, 0)
	s.SetMigrator(a, m)
	blk = s.BlockOf(a)
	m.during = func(old, new uintptr) error {
		if err := s.FreePages(old, 0); err != nil {
			return err
		}
		return errors.New("not mine any more")
	}
	if err := s.Offline(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if n := migCount(s); n != 0 {
		t.Fatalf("%d migrator entries after the raced migration", n)
	}
	if err := s.Online(ctx, blk, OnlineKernel); err != nil {
		t.Fatal(err)
	}

	// The owner clears its Migrator during a successful MigratePage: old
	// is still freed.
	a, _ = s.AllocPages(0, 0, 0)
	s.SetMigrator(a, m)
	blk = s.BlockOf(a)
	m.during = func(old, new uintptr) error { s.SetMigrator(old, nil); return nil }
	if err := s.Offline(ctx, blk); err != nil {
		t.Fatal(err)
	}
	s.FreePages(m.moved[a], 0)
	if n := migCount(s); n != 0 {
		t.Fatalf("%d migrator entries left", n)
	}
	checkFree(t, s)
}

// TestFreeClearsOwner checks that FreePages zeroes the Owner words of every
// page of the allocation, on the per-P fast path (order 0) and the buddy
// path, so the next owner never reads a stale header.
func TestFreeClearsOwner(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 1 << 20, InitialPerNode: 1 << 20, MaxBlocks: 4})
	for _, order := range []int{0, 2} {
		addr, err := s.AllocPages(0, order, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := uintptr(0); i < 1<<order; i++ {
			s.PageOf(addr + i*PageSize).Owner = [4]uint64{1, 2, 3, 4}
		}
		if err := s.FreePages(addr, order); err != nil {
			t.Fatal(err)
		}
		for i := uintptr(0); i < 1<<order; i++ {
			if o := s.PageOf(addr + i*PageSize).Owner; o != [4]uint64{} {
				t.Errorf("order %d: page %d keeps Owner %v after free", order, i, o)
			}
		}
	}
}

// TestVmemmapAfterRemove: a removed block's Pages are discarded but stay
// mapped, so a lock-free reader that raced with the remove reads zeros
// instead of faulting, and PageOf refuses the block.
func TestVmemmapAfterRemove(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 1 << 20, InitialPerNode: 1 << 20, MaxBlocks: 4})
	ids, err := s.AddMemory(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Base() + uintptr(ids[0])<<20
	if s.PageOf(addr) == nil {
		t.Fatal("no Page for an added block")
	}
	if err := s.RemoveMemory(ids[0]); err != nil {
		t.Fatal(err)
	}
	if s.PageOf(addr) != nil || s.PFNPage(s.PFNOf(addr)) != nil {
		t.Fatal("PageOf/PFNPage of a removed block")
	}
	for i, b := range s.memmap(ids[0]) {
		if b != 0 {
			t.Fatalf("byte %d of the removed block's struct pages is %#x", i, b)
		}
	}
	pm := s.PageMap()
	if pg := pm.PageAt(addr); pg == nil || *pg != (Page{}) {
		t.Fatalf("PageAt of a removed block: %v", pg)
	}
}

// TestPageAt: PageAt returns the same Page as PageOf for a present block,
// a readable all-zero Page for a block never added (no fault: the vmemmap
// reservation is readable), and nil outside the range.
func TestPageAt(t *testing.T) {
	s := newTest(t, Config{Nodes: 1, BlockSize: 1 << 20, InitialPerNode: 1 << 20, MaxBlocks: 4})
	pm := s.PageMap()
	if pm.Base() != s.Base() || pm.Size() != 4<<20 {
		t.Fatalf("PageMap base %#x size %#x, System base %#x", pm.Base(), pm.Size(), s.Base())
	}
	addr, err := s.AllocPages(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.FreePages(addr, 0)
	if got, want := pm.PageAt(addr+100), s.PageOf(addr); got != want || got == nil {
		t.Fatalf("PageAt %p, PageOf %p", got, want)
	}
	absent := s.Base() + 3<<20 // block 3 was never added
	if s.PageOf(absent) != nil {
		t.Fatal("PageOf of an absent block")
	}
	if pg := pm.PageAt(absent); pg == nil || *pg != (Page{}) {
		t.Fatalf("PageAt of an absent block: %v", pg)
	}
	for _, a := range []uintptr{s.Base() - 1, s.Base() + 4<<20, 0} {
		if pm.PageAt(a) != nil {
			t.Fatalf("PageAt(%#x) outside the range is not nil", a)
		}
	}
}
