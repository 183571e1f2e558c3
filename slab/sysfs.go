// The registration of a sysfs view: what is told, under slab_mutex, of
// caches and names as they come and go (the kernel's sysfs_slab_add,
// sysfs_slab_alias and sysfs_slab_unlink, all under slab_mutex).

package slab

// SysfsHooks is told of the allocator's caches with slab_mutex held:
// CacheAdded for a new underlying cache (its /sys/kernel/slab directory,
// named by UniqueID), NameAdded for each name of a mergeable cache (a
// symlink to that directory: the first name and every alias),
// NameRemoved and CacheRemoving as they go. CacheRemoving may wait (a
// directory draining its active references), so an attribute must not
// take slab_mutex (the 2021 lesson: a shrink attribute that did deadlocked
// against cache creation).
type SysfsHooks interface {
	CacheAdded(ci CacheInfo)
	CacheRemoving(uniqueID string)
	NameAdded(name, uniqueID string)
	NameRemoved(name string)
}

// SetSysfs registers h (nil: none), telling it of every existing cache
// and name; it returns a function that unregisters it.
func (a *Allocator) SetSysfs(h SysfsHooks) (unset func()) {
	a.slabMutex.Lock()
	defer a.slabMutex.Unlock()
	a.sysfs = h
	if h != nil {
		for _, k := range a.caches {
			h.CacheAdded(a.infoLocked(k))
			if k.mergeable() {
				for _, n := range k.names {
					h.NameAdded(n, k.uniqueID)
				}
			}
		}
	}
	return func() {
		a.slabMutex.Lock()
		if a.sysfs == h {
			a.sysfs = nil
		}
		a.slabMutex.Unlock()
	}
}

// infoLocked describes k. Called with slab_mutex held.
func (a *Allocator) infoLocked(k *kmemCache) CacheInfo {
	ci := CacheInfo{Name: k.name, UniqueID: k.uniqueID, Mergeable: k.mergeable(), cache: k}
	for _, n := range k.names {
		if n != k.name {
			ci.Aliases = append(ci.Aliases, n)
		}
	}
	return ci
}

// The attributes a view shows beyond CacheStats.

// Flags returns the cache's creation flags.
func (ci *CacheInfo) Flags() Flags { return ci.cache.flags }

// HasCtor reports whether the cache has a constructor.
func (ci *CacheInfo) HasCtor() bool { return ci.cache.ctor != nil }

// MinPartial returns how many empty slabs a node keeps (min_partial).
func (ci *CacheInfo) MinPartial() int { return ci.cache.minPartial }

// AliasCount returns how many names beyond the first the cache has now
// (without slab_mutex).
func (ci *CacheInfo) AliasCount() int { return int(ci.cache.aliases.Load()) }

// Validate validates the cache, as Cache.Validate (no slab_mutex).
func (ci *CacheInfo) Validate() error { return ci.cache.validate(ci.Name) }

// SetFailslab and Failslab are Cache.SetFailslab and Cache.Failslab for
// the underlying cache.
func (ci *CacheInfo) SetFailslab(on bool) { ci.cache.failslab.Store(on) }

// Failslab reports the cache's failslab mark.
func (ci *CacheInfo) Failslab() bool { return ci.cache.failslab.Load() }

// Calls is Cache.Calls for the underlying cache, and whether the cache
// tracks calls at all (StoreUser).
func (ci *CacheInfo) Calls(free bool) (string, bool) {
	return ci.cache.calls(free), ci.cache.debug&StoreUser != 0
}

// Shrink shrinks the cache, as Cache.Shrink: it takes slab_flush_lock,
// never slab_mutex (what the sysfs shrink attribute may call).
func (ci *CacheInfo) Shrink() { ci.cache.shrink() }
