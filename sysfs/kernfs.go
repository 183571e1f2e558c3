// The tree: directories, attribute files and symlinks with the kernel's
// kernfs rules — an active reference per attribute access, removal that
// deactivates a subtree and waits for its active references to drain.

package sysfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
)

// Node kinds.
const (
	KindDir = iota
	KindFile
	KindLink
)

// treeClass is the tree's structure lock (the kernel's kernfs_rwsem).
var treeClass = lockdep.NewClass("kernfs_rwsem")

// Attr is what an attribute file does: Show renders its contents (a
// snapshot, taken by a read at offset 0), Store takes a write. A nil Store
// makes the file read-only, a nil Show write-only. Store's errors return
// as write(2)'s errno (Errno: the syscall.Errno an error wraps, else
// EINVAL). A write of more than a page is cut to a page (sysfs), or,
// with Atomic, refused with E2BIG (cgroup files: kernfs's
// atomic_write_len).
type Attr struct {
	Show   func() (string, error)
	Store  func(ctx context.Context, data string) error
	Atomic bool
}

// MaxWrite is the most a write may store: a page.
const MaxWrite = 4096

// ActiveClass returns the lockdep class of the active references of one
// attribute kind (the kernel's "kn->active#N", one per attribute
// definition): attributes of the same name under directories of the same
// kind share it, so an order seen through one is the rule for all.
func ActiveClass(kind string) *lockdep.Class {
	if c, ok := activeClasses.Load(kind); ok {
		return c.(*lockdep.Class)
	}
	c, _ := activeClasses.LoadOrStore(kind, lockdep.NewClass("kn->active#"+kind))
	return c.(*lockdep.Class)
}

var activeClasses sync.Map

// Node is a kernfs node: a directory, an attribute file or a symlink.
type Node struct {
	tree   *Tree
	name   string
	parent *Node
	kind   int
	mode   uint32 // permission bits
	ino    uint64
	// children (directories), under the tree lock.
	children map[string]*Node
	attr     Attr
	target   string // symlink target, relative
	// dirOps: mkdir/rmdir of a directory (cgroup), nil for none.
	dirOps DirOps
	// hidden: made by MkdirHidden and not yet Activated: lookups and
	// listings do not show it (the kernel's !KERNFS_ACTIVATED).
	hidden atomic.Bool
	// active counts the node's active references; deactivated (a large
	// negative bias added) once removal starts, after which no new one
	// is granted. drained is signalled when it reaches the bias.
	active  atomic.Int64
	drainMu sync.Mutex
	drained *sync.Cond
	class   *lockdep.Class
}

// deactivatedBias is added to active by removal (KN_DEACTIVATED_BIAS).
const deactivatedBias = -(1 << 40)

// DirOps handles mkdir and rmdir below a directory (the kernel's
// kernfs_syscall_ops, for cgroup). Both run with no tree lock held; Mkdir
// with the parent's active reference held, Rmdir with none (the kernel's
// cgroup_rmdir breaks the victim's active protection: the removal drains
// it). They create or remove the nodes themselves.
type DirOps interface {
	Mkdir(parent *Node, name string) error
	Rmdir(n *Node) error
}

// Tree is a kernfs tree. Its methods are safe for concurrent use.
type Tree struct {
	mu      lockdep.RWMutex
	root    *Node
	nextIno atomic.Uint64
}

// NewTree returns an empty tree (a root directory, mode 0755).
func NewTree() *Tree {
	t := &Tree{}
	t.mu.Init(treeClass)
	t.nextIno.Store(1)
	t.root = t.newNode("", nil, KindDir, 0o755)
	return t
}

func (t *Tree) newNode(name string, parent *Node, kind int, mode uint32) *Node {
	n := &Node{tree: t, name: name, parent: parent, kind: kind, mode: mode, ino: t.nextIno.Add(1)}
	n.drained = sync.NewCond(&n.drainMu)
	if kind == KindDir {
		n.children = map[string]*Node{}
	}
	return n
}

// Root returns the root directory.
func (t *Tree) Root() *Node { return t.root }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Kind returns KindDir, KindFile or KindLink.
func (n *Node) Kind() int { return n.kind }

// Mode returns the permission bits.
func (n *Node) Mode() uint32 { return n.mode }

// Ino returns the node's inode number (unique in the tree).
func (n *Node) Ino() uint64 { return n.ino }

// Target returns a symlink's target.
func (n *Node) Target() string { return n.target }

// Path returns the node's path from the root, without a leading slash.
func (n *Node) Path() string {
	var parts []string
	for x := n; x.parent != nil; x = x.parent {
		parts = append(parts, x.name)
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// Errors of tree operations, with the kernel's errnos.
var (
	ErrExist    = syscall.EEXIST
	ErrNotExist = syscall.ENOENT
	ErrRemoved  = syscall.ENODEV // the node was removed: no new active reference
)

// add links a new child under n. Called with the tree lock held (write).
func (n *Node) add(c *Node) error {
	if n.kind != KindDir {
		return fmt.Errorf("sysfs: %s: not a directory: %w", n.Path(), syscall.ENOTDIR)
	}
	if n.active.Load() < 0 {
		return fmt.Errorf("sysfs: %s: %w", n.Path(), ErrRemoved)
	}
	if _, ok := n.children[c.name]; ok {
		return fmt.Errorf("sysfs: %s/%s: %w", n.Path(), c.name, ErrExist)
	}
	n.children[c.name] = c
	return nil
}

// Mkdir creates a directory under n.
func (n *Node) Mkdir(name string, mode uint32) (*Node, error) {
	t := n.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.newNode(name, n, KindDir, mode)
	if err := n.add(c); err != nil {
		return nil, err
	}
	return c, nil
}

// MkdirHidden is Mkdir for a directory to be filled before anyone sees
// it: lookups and listings skip it until Activate (kernfs_activate).
func (n *Node) MkdirHidden(name string, mode uint32) (*Node, error) {
	t := n.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.newNode(name, n, KindDir, mode)
	c.hidden.Store(true)
	if err := n.add(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Activate shows a directory made by MkdirHidden, with what was added to
// it meanwhile, at once.
func (n *Node) Activate() { n.hidden.Store(false) }

// visible reports whether lookups and listings show n.
func (n *Node) visible() bool { return n.active.Load() >= 0 && !n.hidden.Load() }

// SetDirOps sets n's mkdir/rmdir handlers.
func (n *Node) SetDirOps(ops DirOps) { n.dirOps = ops }

// AddFile creates an attribute file under n; class is its active
// references' lockdep class (ActiveClass of its kind).
func (n *Node) AddFile(name string, mode uint32, a Attr, class *lockdep.Class) (*Node, error) {
	t := n.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.newNode(name, n, KindFile, mode)
	c.attr, c.class = a, class
	if err := n.add(c); err != nil {
		return nil, err
	}
	return c, nil
}

// AddLink creates a symlink under n pointing to target (relative).
func (n *Node) AddLink(name, target string) (*Node, error) {
	t := n.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.newNode(name, n, KindLink, 0o777)
	c.target = target
	if err := n.add(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Lookup returns n's child name, or nil.
func (n *Node) Lookup(name string) *Node {
	t := n.tree
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := n.children[name]
	if c == nil || !c.visible() {
		return nil
	}
	return c
}

// Walk returns the node at path ("a/b/c") below n, or nil.
func (n *Node) Walk(path string) *Node {
	for _, name := range strings.Split(strings.Trim(path, "/"), "/") {
		if name == "" {
			continue
		}
		if n = n.Lookup(name); n == nil {
			return nil
		}
	}
	return n
}

// Children returns n's children, sorted by name.
func (n *Node) Children() []*Node {
	t := n.tree
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*Node, 0, len(n.children))
	for _, c := range n.children {
		if c.visible() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *Node) int { return strings.Compare(a.name, b.name) })
	return out
}

// getActive takes an active reference on n, or fails (false) if n is
// being removed. Kernel: kernfs_get_active() — a read trylock of the
// node's lockdep map, so that what the holder takes next depends on it.
func (n *Node) getActive() bool {
	for {
		v := n.active.Load()
		if v < 0 {
			return false
		}
		if n.active.CompareAndSwap(v, v+1) {
			lockdep.Acquire(n.class, 0, n.inst(), lockdep.Read, true)
			return true
		}
	}
}

// putActive drops an active reference. Kernel: kernfs_put_active().
func (n *Node) putActive() {
	lockdep.Release(n.class, n.inst())
	if n.active.Add(-1) == deactivatedBias {
		n.drainMu.Lock()
		n.drained.Broadcast()
		n.drainMu.Unlock()
	}
}

func (n *Node) inst() uintptr { return uintptr(unsafe.Pointer(n)) }

// Remove removes n and its subtree: it deactivates every node (no new
// active reference is granted), unlinks n, then waits for the active
// references still held to drain — so a caller holding a lock that an
// attribute's Store takes must not call it while that Store can run
// (lockdep reports the inversion: the wait is a write acquisition of each
// attribute's active class). Kernel: kernfs_remove() / kernfs_drain().
func (n *Node) Remove() error {
	t := n.tree
	t.mu.Lock()
	if n.parent == nil || n.active.Load() < 0 {
		t.mu.Unlock()
		return fmt.Errorf("sysfs: remove %s: %w", n.Path(), ErrRemoved)
	}
	var nodes []*Node
	var walk func(x *Node)
	walk = func(x *Node) {
		x.active.Add(deactivatedBias)
		nodes = append(nodes, x)
		for _, c := range x.children {
			walk(c)
		}
	}
	walk(n)
	delete(n.parent.children, n.name)
	t.mu.Unlock()
	for _, x := range nodes {
		x.drain()
	}
	return nil
}

// drain waits for x's active references to go. Kernel: kernfs_drain():
// rwsem_acquire on the node's map, so that a lock held here and taken by
// an attribute operation of the same kind is a reported inversion.
func (x *Node) drain() {
	if x.class != nil {
		lockdep.Acquire(x.class, 0, x.inst(), lockdep.Write, false)
		defer lockdep.Release(x.class, x.inst())
	}
	x.drainMu.Lock()
	for x.active.Load() != deactivatedBias {
		x.drained.Wait()
	}
	x.drainMu.Unlock()
}

// Read returns a snapshot of an attribute's contents, under an active
// reference. ErrRemoved if the node is being removed.
func (n *Node) Read() (string, error) {
	if n.kind != KindFile {
		return "", fmt.Errorf("sysfs: read %s: %w", n.Path(), syscall.EISDIR)
	}
	if n.attr.Show == nil {
		return "", fmt.Errorf("sysfs: read %s: %w", n.Path(), syscall.EACCES)
	}
	if !n.getActive() {
		return "", fmt.Errorf("sysfs: read %s: %w", n.Path(), ErrRemoved)
	}
	defer n.putActive()
	return n.attr.Show()
}

// ErrRestart is what a Store returns when it must drop its active
// reference and run again: it could not take a lock (device_hotplug_lock)
// whose holder may be waiting for this node's active references to
// drain. Write retries it after dropping the reference. Kernel:
// restart_syscall() from lock_device_hotplug_sysfs().
var ErrRestart = errors.New("sysfs: restart the write")

// Write performs a write of data to an attribute, under an active
// reference; a Store that returns ErrRestart runs again, the reference
// dropped in between, until ctx is done (then EINTR).
func (n *Node) Write(ctx context.Context, data string) error {
	if n.kind != KindFile {
		return fmt.Errorf("sysfs: write %s: %w", n.Path(), syscall.EISDIR)
	}
	if n.attr.Store == nil {
		return fmt.Errorf("sysfs: write %s: %w", n.Path(), syscall.EACCES)
	}
	for {
		if !n.getActive() {
			return fmt.Errorf("sysfs: write %s: %w", n.Path(), ErrRemoved)
		}
		err := n.store(ctx, data)
		if !errors.Is(err, ErrRestart) {
			return err
		}
		restarts.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("sysfs: write %s: %w", n.Path(), syscall.EINTR)
		case <-time.After(time.Millisecond):
		}
	}
}

// store runs the Store under the active reference getActive took.
func (n *Node) store(ctx context.Context, data string) error {
	defer n.putActive()
	return n.attr.Store(ctx, data)
}

// restarts counts ErrRestart retries (tests wait for one).
var restarts atomic.Int64

// Errno returns the errno err carries (errors.As a syscall.Errno), EINVAL
// for an error with none, 0 for nil: what write(2) returns to a process.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EINVAL
}
