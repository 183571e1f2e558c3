//go:build linux

// Movable pages with an owner: the Migrator interface, the per-System
// side table SetMigrator fills, and the migration of one allocation
// during an offline.

package mem

import "syscall"

// Migrator is implemented by owners of movable pages. When a block is
// offlined, mem allocates a new page of the same order elsewhere, gives it
// the Migrator, and calls MigratePage: the owner copies the contents from old to new (mem does
// NOT copy: only the owner knows how to stop its writers), repoints its
// references to new, sets new's Page.Owner words if it uses them, and returns
// nil. mem then frees old; new keeps the Migrator. On error mem clears
// new's Migrator, frees new and retries later (Offline keeps trying until its context is
// cancelled). MigratePage can race with the owner's own FreePages of old
// (mem read the Migrator before the owner freed the page): the owner must
// serialise the two and return an error if it no longer owns old; mem then
// sees old free (it cannot be reallocated meanwhile: its block is
// isolated). MigratePage is called with device_hotplug_lock, the block's
// device lock and mem_hotplug_lock (write) held, but no notifier chain's
// lock and no zone lock; it may allocate and free pages.
// Kernel: the migrate_page/move_to callbacks of movable_operations.
type Migrator interface {
	MigratePage(old, new uintptr, order int) error
}

// SetMigrator marks the allocation at addr as movable by m: when its block
// is offlined, m.MigratePage moves it instead of the offline failing or
// waiting. m == nil clears it. addr may be anywhere in the allocation's
// first page; the call is ignored if that page is not the head of an
// allocation. Kernel: __SetPageMovable().
func (s *System) SetMigrator(addr uintptr, m Migrator) {
	_ = s.setMigrator(addr, m)
}

// setMigrator is SetMigrator, returning an error wrapping EINVAL when it
// ignores the call.
func (s *System) setMigrator(addr uintptr, m Migrator) error {
	addr &^= PageSize - 1 // the side table is keyed by page address
	pg := s.PageOf(addr)
	if pg == nil || !pg.Allocated() {
		return errnoErr(syscall.EINVAL, "set migrator of %#x: not an allocation", addr)
	}
	if m != nil {
		// Entry first: whoever sees pgMigrator finds it.
		s.migs.Store(addr, m)
	}
	for {
		st := pg.loadState()
		if stKind(st) != pgAlloc {
			if m != nil {
				s.migs.Delete(addr)
			}
			return errnoErr(syscall.EINVAL, "set migrator of %#x: not an allocation", addr)
		}
		nst := st | pgMigrator
		if m == nil {
			nst = st &^ pgMigrator
		}
		if st == nst || pg.casState(st, nst) {
			break
		}
	}
	if m == nil {
		s.migs.Delete(addr)
	}
	return nil
}

// migrator returns the Migrator of the allocation at addr whose head's
// state st the caller read, or nil.
func (s *System) migrator(addr uintptr, st uint32) Migrator {
	if st&pgMigrator == 0 {
		return nil
	}
	if v, ok := s.migs.Load(addr); ok {
		return v.(Migrator)
	}
	return nil
}

// migrate moves one allocation with a Migrator to a new page outside b.
// Kernel: migrate_pages() with alloc_migration_target().
func (s *System) migrate(b *block, pg *Page, st uint32, m Migrator) error {
	order := stOrder(st)
	old := b.pageAddr(int(pg.idx))
	newAddr, _ := s.allocWait(b.node, order, stGFP(st)&GFPMovable)
	if newAddr == 0 {
		return errnoErr(syscall.ENOMEM, "offline block %d: no page to migrate %#x to", b.index, old)
	}
	// The Migrator goes with the page (new owns it from here on).
	_ = s.setMigrator(newAddr, m)
	if err := m.MigratePage(old, newAddr, order); err != nil {
		_ = s.setMigrator(newAddr, nil)
		_ = s.FreePages(newAddr, order)
		s.log.Debug("mem: migration failed, will retry", "addr", old, "err", err)
		return err
	}
	// The owner now uses newAddr; free old (unless it was freed already).
	// old cannot have been reallocated (its block is isolated), so a
	// pgAlloc head of the same order is still the allocation migrated;
	// only its pgMigrator bit may have changed meanwhile.
	for {
		cur := pg.loadState()
		if stKind(cur) != pgAlloc || stOrder(cur) != order {
			break
		}
		if pg.casState(cur, mkState(pgPcp, 0, 0)) {
			clearOwners(pg, order)
			if cur&pgMigrator != 0 {
				s.migs.Delete(old)
			}
			s.freeToBuddy(b, pg, order)
			break
		}
	}
	return nil
}
