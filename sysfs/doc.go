// Package sysfs serves a hotslab system through the kernel's own files —
// sysfs memory blocks and nodes, /proc/slabinfo and /sys/kernel/slab, the
// cgroup v2 memory files and debugfs notifier error injection — over a
// real FUSE mount (github.com/hanwen/go-fuse/v2), so that lsmem, chmem
// and slabtop work on it unchanged.
//
// # The tree (kernfs.go)
//
// A Tree is the kernel's kernfs in small: directories, attribute files
// (an Attr's Show renders a snapshot, its Store takes a write) and
// symlinks. Every attribute read or write holds an active reference on
// its node, which lockdep sees as a read trylock of the attribute kind's
// class (ActiveClass: the kernel's kn->active#N, one class per attribute
// definition). Remove deactivates a subtree, unlinks it and then waits for
// the active references to drain, a write acquisition of each class: so a
// lock held around a removal and taken by a Store of the same kind is a
// reported inversion. A Store that must take device_hotplug_lock does it
// with a trylock and returns ErrRestart when it fails; Write then drops
// the active reference and runs it again (lock_device_hotplug_sysfs and
// restart_syscall), because hot-remove holds device_hotplug_lock while it
// waits for the block's references.
//
// # The views
//
//	AddMemory               sys/devices/system/memory (block_size_bytes,
//	                        auto_online_blocks, probe, memoryN/{state,
//	                        online, phys_index, phys_device, removable,
//	                        valid_zones, nodeM}) and sys/devices/system/node
//	                        (nodeM/{memoryN, meminfo}, the node masks),
//	                        following mem's blocks (mem.SetBlockDevices)
//	AddSlab                 proc/slabinfo and sys/kernel/slab (a directory
//	                        per cache, ":..." for mergeable ones with a link
//	                        per name; the attributes tools/mm/slabinfo
//	                        reads, writable shrink and validate), following
//	                        slab's caches (slab.SetSysfs)
//	AddCgroup               sys/fs/cgroup: mkdir and rmdir make and remove
//	                        groups, the memory.* files (memcg.SetHooks)
//	AddNotifierErrorInject  sys/kernel/debug/notifier-error-inject/memory
//	AddFaultInjection       sys/kernel/debug/{failslab,fail_page_alloc}
//	                        (package fault's knobs)
//
// # The mount (fuse.go)
//
// MountTree mounts a Tree. Files are opened with direct I/O and entries
// and attributes are never cached, so no page cache serves a stale state;
// a read at offset 0 takes a fresh snapshot (the kernel's seq_file: a
// reader that rewinds, as slabtop does, sees new contents). A write(2) is
// one Store of at most a page (longer ones are cut to a page, as kernfs
// cuts them, or refused with E2BIG for the cgroup files); its error's errno
// is write(2)'s (Errno). A shell's O_TRUNC and a chmod are accepted; the
// kernel checks permissions against the files' modes and root ownership
// (default_permissions); unlink, rename, link and symlink are EPERM,
// creating a file EACCES, as in sysfs. A busy mount unmounts lazily.
// CleanStaleMount removes a crashed server's mount before MountTree mounts
// on its directory.
//
// # Locks, in lock order (outermost first)
//
//	device_hotplug_lock (mem)     a memory store takes it only by trylock;
//	                              block removal drains kn->active#memory/*
//	                              under it (and nothing else of mem's)
//	slab_mutex (slab)             cache creation and destruction add and
//	                              remove /sys/kernel/slab directories under
//	                              it, draining kn->active#slab/*: no slab
//	                              attribute may take it (the 2021 shrink
//	                              deadlock), and none does
//	cgroup_mutex (memcg)          group creation and removal, likewise for
//	                              kn->active#cgroup/*
//	kn->active#<kind>             held (read) by every attribute access
//	kernfs_rwsem                  Tree.mu: the tree's structure; a leaf
//	                              taken inside all of the above, never
//	                              held while a Show or Store runs or while
//	                              a removal drains
//
// Tests drive lsmem, chmem and slabtop on a real mount, chmem and slabtop
// only inside unshare -m over a bind mount of the tree (never the
// machine's own files), and show with lockdep that a store taking
// device_hotplug_lock with a plain Lock, or a shrink taking slab_mutex,
// is reported.
package sysfs
