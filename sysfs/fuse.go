// The FUSE server: a Tree mounted with github.com/hanwen/go-fuse/v2, with
// the kernel's modes, entry types and errnos, direct I/O (no page cache
// serves a stale state) and no attribute or entry caching.

package sysfs

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	if _, err := CleanStaleMounts(); err != nil {
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

// Unmount unmounts (lazily if it is busy) and waits for the server to
// end. A second call returns the first one's result.
func (m *Mount) Unmount() error {
	m.once.Do(func() {
		if err := m.server.Unmount(); err != nil {
			if uerr := syscall.Unmount(m.Dir, syscall.MNT_DETACH); uerr != nil {
				m.err = fmt.Errorf("sysfs: unmount %s: %w", m.Dir, err)
				return
			}
		}
		m.server.Wait()
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
)

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
		a.Size = 4096 // sysfs attributes claim a page
	case KindLink:
		a.Size = uint64(len(n.target))
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
// O_TRUNC before its write) and nothing else that changes it.
func (f *fsNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok && (f.n.kind != KindFile || f.n.attr.Store == nil) {
		return syscall.EACCES
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
	if err := ops.Mkdir(f.n, name); err != nil {
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

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := h.n.Write(ctx, string(data)); err != nil {
		return 0, Errno(err)
	}
	return uint32(len(data)), 0
}

// CleanStaleMounts unmounts the hotslab views whose server is gone — a
// process that mounted them and crashed (the kernel keeps such a mount,
// answering ENOTCONN) — and returns how many it unmounted. MountTree runs
// it first; so does hotslab run.
func CleanStaleMounts() (int, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
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
		if _, err := os.Stat(mp); !errors.Is(err, syscall.ENOTCONN) {
			continue // alive (or gone already)
		}
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			return n, fmt.Errorf("sysfs: unmount stale %s: %w", mp, err)
		}
		n++
	}
	return n, nil
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
