// The FUSE server: a Tree mounted with github.com/hanwen/go-fuse/v2, with
// the kernel's modes, entry types and errnos, direct I/O (no page cache
// serves a stale state) and no attribute or entry caching.

package sysfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Mount is a Tree mounted on a directory.
type Mount struct {
	Dir    string
	server *fuse.Server
	once   sync.Once
	err    error
}

// MountTree mounts t on dir (which must exist). It needs /dev/fuse and
// the right to mount (root, or fusermount). Unmount it with Unmount.
func MountTree(dir string, t *Tree) (*Mount, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("sysfs: mount %s: /dev/fuse: %w", dir, err)
	}
	if _, err := CleanStaleMount(dir); err != nil {
		return nil, err
	}
	zero := time.Duration(0)
	root := &fsNode{n: t.Root()}
	server, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "hotslab",
			Name:        "hotslab",
			DirectMount: true,
			AllowOther:  true,
			// The kernel checks every access against the files' owners
			// (root) and modes, as for sysfs: other users read what
			// is readable and write nothing.
			Options: []string{"default_permissions"},
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		UID:             0,
		GID:             0,
	})
	if err != nil {
		return nil, fmt.Errorf("sysfs: mount %s: %w", dir, err)
	}
	return &Mount{Dir: dir, server: server}, nil
}

// unmountWait is how long Unmount waits for a lazily detached mount's
// users before it returns anyway (the server ends when the last one
// lets go, or with the process).
const unmountWait = 2 * time.Second

// Unmount unmounts. A busy mount (a shell's working directory inside it,
// an open file) is detached lazily: it disappears from the namespace at
// once, and Unmount waits at most a couple of seconds for its users. A
// second call returns the first one's result.
func (m *Mount) Unmount() error {
	m.once.Do(func() {
		if err := m.server.Unmount(); err != nil {
			if uerr := syscall.Unmount(m.Dir, syscall.MNT_DETACH); uerr != nil {
				m.err = fmt.Errorf("sysfs: unmount %s: %w", m.Dir, err)
				return
			}
		}
		done := make(chan struct{})
		go func() { m.server.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(unmountWait):
		}
	})
	return m.err
}

// fsNode is a tree node as a go-fuse inode.
type fsNode struct {
	fs.Inode
	n *Node
}

var (
	_ fs.NodeLookuper   = (*fsNode)(nil)
	_ fs.NodeReaddirer  = (*fsNode)(nil)
	_ fs.NodeGetattrer  = (*fsNode)(nil)
	_ fs.NodeSetattrer  = (*fsNode)(nil)
	_ fs.NodeOpener     = (*fsNode)(nil)
	_ fs.NodeReadlinker = (*fsNode)(nil)
	_ fs.NodeMkdirer    = (*fsNode)(nil)
	_ fs.NodeRmdirer    = (*fsNode)(nil)
	_ fs.NodeUnlinker   = (*fsNode)(nil)
	_ fs.NodeRenamer    = (*fsNode)(nil)
	_ fs.NodeSymlinker  = (*fsNode)(nil)
	_ fs.NodeCreater    = (*fsNode)(nil)
	_ fs.NodeLinker     = (*fsNode)(nil)
	_ fs.NodeMknoder    = (*fsNode)(nil)
)

// The operations sysfs does not have, with its errnos.

func (f *fsNode) Unlink(context.Context, string) syscall.Errno { return syscall.EPERM }
func (f *fsNode) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EPERM
}
func (f *fsNode) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}
func (f *fsNode) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EACCES
}
func (f *fsNode) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}
func (f *fsNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func fuseMode(n *Node) uint32 {
	switch n.kind {
	case KindDir:
		return syscall.S_IFDIR | n.mode
	case KindLink:
		return syscall.S_IFLNK | 0o777
	}
	return syscall.S_IFREG | n.mode
}

func fillAttr(n *Node, a *fuse.Attr) {
	a.Mode = fuseMode(n)
	a.Ino = n.ino
	a.Nlink = 1
	switch n.kind {
	case KindDir:
		a.Nlink = 2
	case KindFile:
		a.Size = 4096 // sysfs and debugfs attributes claim a page
		if strings.HasPrefix(n.Path(), "proc/") || strings.HasPrefix(n.Path(), "sys/fs/cgroup/") {
			a.Size = 0 // proc and cgroup files claim nothing: read to EOF
		}
	}
	now := time.Now()
	a.SetTimes(&now, &now, &now)
}

func (f *fsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c := f.n.Lookup(name)
	if c == nil {
		return nil, syscall.ENOENT
	}
	fillAttr(c, &out.Attr)
	return f.NewInode(ctx, &fsNode{n: c}, fs.StableAttr{Mode: fuseMode(c) &^ 0o7777, Ino: c.ino}), 0
}

func (f *fsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var ents []fuse.DirEntry
	for _, c := range f.n.Children() {
		ents = append(ents, fuse.DirEntry{Name: c.name, Ino: c.ino, Mode: fuseMode(c) &^ 0o7777})
	}
	return fs.NewListDirStream(ents), 0
}

func (f *fsNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(f.n, &out.Attr)
	return 0
}

// Setattr accepts a truncation of a writable attribute (a shell's
// O_TRUNC before its write) and a chmod (kernfs keeps the new mode), and
// refuses a change of owner (EPERM).
func (f *fsNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok && (f.n.kind != KindFile || f.n.attr.Store == nil) {
		return syscall.EACCES
	}
	if _, ok := in.GetUID(); ok {
		return syscall.EPERM
	}
	if _, ok := in.GetGID(); ok {
		return syscall.EPERM
	}
	if m, ok := in.GetMode(); ok && f.n.kind != KindLink {
		f.n.tree.mu.Lock()
		f.n.mode = m & 0o7777
		f.n.tree.mu.Unlock()
	}
	fillAttr(f.n, &out.Attr)
	return 0
}

func (f *fsNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if f.n.kind != KindLink {
		return nil, syscall.EINVAL
	}
	return []byte(f.n.target), 0
}

// Open checks the access mode against the attribute's mode (root is held
// to it too, as sysfs does) and returns a handle with direct I/O.
func (f *fsNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	n := f.n
	if n.kind != KindFile {
		return nil, 0, syscall.EISDIR
	}
	acc := flags & syscall.O_ACCMODE
	if (acc == syscall.O_RDONLY || acc == syscall.O_RDWR) && (n.attr.Show == nil || n.mode&0o444 == 0) {
		return nil, 0, syscall.EACCES
	}
	if (acc == syscall.O_WRONLY || acc == syscall.O_RDWR) && (n.attr.Store == nil || n.mode&0o222 == 0) {
		return nil, 0, syscall.EACCES
	}
	return &fileHandle{n: n}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *fsNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ops := f.n.dirOps
	if ops == nil {
		return nil, syscall.EPERM
	}
	if !f.n.getActive() {
		return nil, syscall.ENODEV
	}
	err := ops.Mkdir(f.n, name)
	f.n.putActive()
	if err != nil {
		return nil, Errno(err)
	}
	return f.Lookup(ctx, name, out)
}

func (f *fsNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	ops := f.n.dirOps
	c := f.n.Lookup(name)
	if c == nil {
		return syscall.ENOENT
	}
	if ops == nil || c.kind != KindDir {
		return syscall.EPERM
	}
	return Errno(ops.Rmdir(c))
}

// fileHandle is an open attribute: reads are served from a snapshot
// taken at a read at offset 0 (the kernel's seq_file: a reader that
// rewinds and reads again, as slabtop does, sees fresh contents); each
// write is one Store.
type fileHandle struct {
	n    *Node
	mu   sync.Mutex
	snap []byte
	have bool
}

var (
	_ fs.FileReader = (*fileHandle)(nil)
	_ fs.FileWriter = (*fileHandle)(nil)
)

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off == 0 || !h.have {
		s, err := h.n.Read()
		if err != nil {
			return nil, Errno(err)
		}
		h.snap, h.have = []byte(s), true
	}
	if off >= int64(len(h.snap)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(int64(len(h.snap)), off+int64(len(dest)))
	return fuse.ReadResultData(h.snap[off:end]), 0
}

// Write is one Store of what one write(2) asked for, cut to a page as
// kernfs cuts it (the short count tells the writer), or E2BIG for an
// Atomic attribute (cgroup files). A write(2) of more than the FUSE
// request size (128 KiB) reaches here in pieces: the first is cut to a
// page and its short count ends the write(2).
func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if len(data) > MaxWrite {
		if h.n.attr.Atomic {
			return 0, syscall.E2BIG
		}
		data = data[:MaxWrite]
	}
	if err := h.n.Write(ctx, string(data)); err != nil {
		return 0, Errno(err)
	}
	return uint32(len(data)), 0
}

// CleanStaleMount unmounts the hotslab views mounted on dir if their
// server is gone — a process that mounted them and crashed (the kernel
// keeps such a mount, answering ENOTCONN) — and reports whether it did.
// It looks at dir alone (a live server that does not answer, stopped by a
// signal, would hang any access), and gives up after a few seconds of
// no answer. MountTree runs it on its directory first.
func CleanStaleMount(dir string) (bool, error) {
	dir = filepath.Clean(dir)
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 || g[0] != "fuse.hotslab" || g[1] != "hotslab" {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp != dir {
			continue
		}
		stat := make(chan error, 1)
		go func() { _, err := os.Stat(mp); stat <- err }()
		select {
		case err := <-stat:
			if !errors.Is(err, syscall.ENOTCONN) {
				return n > 0, fmt.Errorf("sysfs: %s: hotslab views of a live server mounted there: %w", dir, syscall.EBUSY)
			}
		case <-time.After(3 * time.Second):
			return n > 0, fmt.Errorf("sysfs: %s: a hotslab server mounted there does not answer: %w", dir, syscall.EBUSY)
		}
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			return n > 0, fmt.Errorf("sysfs: unmount stale %s: %w", mp, err)
		}
		n++
	}
	return n > 0, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
