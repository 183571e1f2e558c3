// The cgroup v2 view of a memcg.Controller: sys/fs/cgroup, where mkdir and
// rmdir make and remove groups and the memory.* files read and set them.

package sysfs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/hotslab/hotslab/memcg"
)

// cgroupView keeps a Controller's groups in a tree.
type cgroupView struct {
	c    *memcg.Controller
	root *Node // sys/fs/cgroup
	mu   sync.Mutex
	dirs map[*memcg.Group]*Node
	grps map[*Node]*memcg.Group
}

// AddCgroup serves c's groups as sys/fs/cgroup in the cgroup v2 shape:
// a directory per group (mkdir and rmdir in it create and remove groups:
// EBUSY with children, EEXIST, EINVAL for a bad name) with memory.current,
// memory.events, memory.high (0644), memory.max (0644), memory.numa_stat,
// memory.peak (0644: a write resets it), memory.stat,
// cgroup.controllers and cgroup.subtree_control; the root has
// cgroup.controllers, cgroup.subtree_control, memory.stat and
// memory.numa_stat. It returns a function that stops following c.
func AddCgroup(t *Tree, c *memcg.Controller) (stop func(), err error) {
	root, err := mkdirAll(t.Root(), "sys/fs/cgroup")
	if err != nil {
		return nil, err
	}
	v := &cgroupView{c: c, root: root, dirs: map[*memcg.Group]*Node{}, grps: map[*Node]*memcg.Group{}}
	return c.SetHooks(v), nil
}

// GroupAdded creates the group's directory and files (memcg calls it with
// cgroup_mutex held).
func (v *cgroupView) GroupAdded(g *memcg.Group) {
	var d *Node
	if g.Parent() == nil {
		d = v.root
	} else {
		v.mu.Lock()
		pd := v.dirs[g.Parent()]
		v.mu.Unlock()
		if pd == nil {
			return
		}
		var err error
		if d, err = pd.MkdirHidden(g.Name(), 0o755); err != nil {
			return
		}
		// Shown with all its files at once, as the kernel's
		// cgroup_mkdir activates the directory when it is complete.
		defer d.Activate()
	}
	d.SetDirOps(v)
	v.mu.Lock()
	v.dirs[g], v.grps[d] = d, g
	v.mu.Unlock()
	_, _ = d.AddFile("cgroup.controllers", 0o444, Attr{Show: func() (string, error) { return "memory\n", nil }},
		ActiveClass("cgroup/cgroup.controllers"))
	_, _ = d.AddFile("cgroup.subtree_control", 0o644, Attr{
		Show:   func() (string, error) { return "memory\n", nil },
		Atomic: true,
		Store: func(_ context.Context, data string) error {
			for _, w := range strings.Fields(data) {
				if w != "+memory" && w != "-memory" {
					return fmt.Errorf("subtree_control %q: %w", w, syscall.EINVAL)
				}
			}
			return nil // memory is the one controller, always enabled
		}}, ActiveClass("cgroup/cgroup.subtree_control"))
	for _, f := range memcg.Files {
		if g.Parent() == nil && f.Name != "memory.stat" && f.Name != "memory.numa_stat" {
			continue
		}
		name := f.Name
		a := Attr{Show: func() (string, error) { return g.FileContents(name) }, Atomic: true}
		if f.Mode&0o200 != 0 {
			a.Store = func(_ context.Context, data string) error { return g.WriteFile(name, data) }
		}
		_, _ = d.AddFile(name, f.Mode, a, ActiveClass("cgroup/"+name))
	}
}

// GroupRemoving removes the group's directory, waiting for its active
// references (memcg calls it with cgroup_mutex held).
func (v *cgroupView) GroupRemoving(g *memcg.Group) {
	v.mu.Lock()
	d := v.dirs[g]
	delete(v.dirs, g)
	delete(v.grps, d)
	v.mu.Unlock()
	if d != nil {
		_ = d.Remove()
	}
}

// Mkdir creates a child group of parent's (the kernel's cgroup_mkdir).
func (v *cgroupView) Mkdir(parent *Node, name string) error {
	v.mu.Lock()
	g := v.grps[parent]
	v.mu.Unlock()
	if g == nil {
		return syscall.ENOENT
	}
	_, err := g.Create(name)
	return err
}

// Rmdir removes n's group (the kernel's cgroup_rmdir): EBUSY with
// children.
func (v *cgroupView) Rmdir(n *Node) error {
	v.mu.Lock()
	g := v.grps[n]
	v.mu.Unlock()
	if g == nil {
		return syscall.ENOENT
	}
	return g.Remove()
}
