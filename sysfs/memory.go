// The memory block views: sys/devices/system/memory and
// sys/devices/system/node, for a mem.System.

package sysfs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/hotslab/hotslab/mem"
)

// Active classes of the memory attributes (one per attribute kind).
var (
	activeState  = ActiveClass("memory/state")
	activeOnline = ActiveClass("memory/online")
	activeProbe  = ActiveClass("memory/probe")
	activeAuto   = ActiveClass("memory/auto_online_blocks")
	activeRO     = ActiveClass("memory/ro")
	activeNode   = ActiveClass("node/ro")
)

// memoryView keeps a System's memory and node directories in a tree.
type memoryView struct {
	t       *Tree
	sys     *mem.System
	memDir  *Node
	nodeDir *Node
	mu      sync.Mutex // blocks
	blocks  map[int][]*Node
}

// AddMemory serves sys's memory blocks and nodes under
// sys/devices/system/{memory,node} of t, in the kernel's formats, and
// keeps them as blocks are added and removed. It returns a function that
// stops following sys (the directories stay).
func AddMemory(t *Tree, sys *mem.System) (stop func(), err error) {
	v := &memoryView{t: t, sys: sys, blocks: map[int][]*Node{}}
	system, err := mkdirAll(t.Root(), "sys/devices/system")
	if err != nil {
		return nil, err
	}
	if v.memDir, err = system.Mkdir("memory", 0o755); err != nil {
		return nil, err
	}
	if v.nodeDir, err = system.Mkdir("node", 0o755); err != nil {
		return nil, err
	}
	if err := v.addRoot(); err != nil {
		return nil, err
	}
	return sys.SetBlockDevices(v), nil
}

// mkdirAll returns the directory at path below n, creating what is
// missing (mode 0755).
func mkdirAll(n *Node, path string) (*Node, error) {
	for _, name := range strings.Split(path, "/") {
		c := n.Lookup(name)
		if c == nil {
			var err error
			if c, err = n.Mkdir(name, 0o755); err != nil {
				return nil, err
			}
		}
		n = c
	}
	return n, nil
}

func (v *memoryView) addRoot() error {
	sys := v.sys
	files := []struct {
		name  string
		mode  uint32
		attr  Attr
		class *lockdep.Class
	}{
		{"block_size_bytes", 0o444, Attr{Show: func() (string, error) { return fmt.Sprintf("%x\n", sys.BlockSize()), nil }}, activeRO},
		{"auto_online_blocks", 0o644, Attr{
			Show: func() (string, error) { return sys.AutoOnline().String() + "\n", nil },
			Store: func(_ context.Context, data string) error {
				p, err := mem.ParsePolicy(strings.TrimSuffix(data, "\n"))
				if err != nil {
					return err
				}
				sys.SetAutoOnline(p)
				return nil
			}}, activeAuto},
		{"probe", 0o200, Attr{Store: func(ctx context.Context, data string) error {
			addr, err := ParseUint(data)
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			if !sys.TryLockDeviceHotplug() {
				return ErrRestart
			}
			defer sys.UnlockDeviceHotplug()
			return sys.ProbeLocked(addr)
		}}, activeProbe},
	}
	for _, f := range files {
		if _, err := v.memDir.AddFile(f.name, f.mode, f.attr, f.class); err != nil {
			return err
		}
	}
	for n := range sys.NumNodes() {
		nd, err := v.nodeDir.Mkdir(fmt.Sprintf("node%d", n), 0o755)
		if err != nil {
			return err
		}
		node := n
		if _, err := nd.AddFile("meminfo", 0o444, Attr{Show: func() (string, error) { return v.meminfo(node), nil }}, activeNode); err != nil {
			return err
		}
	}
	masks := map[string]func(int) bool{
		"possible":          func(int) bool { return true },
		"online":            func(int) bool { return true },
		"has_cpu":           func(n int) bool { return n == 0 || sys.NodeHasMemory(n) },
		"has_memory":        sys.NodeHasMemory,
		"has_normal_memory": sys.NodeHasNormalMemory,
	}
	for name, has := range masks {
		has := has
		if _, err := v.nodeDir.AddFile(name, 0o444, Attr{Show: func() (string, error) {
			var nodes []int
			for n := range sys.NumNodes() {
				if has(n) {
					nodes = append(nodes, n)
				}
			}
			return RangeList(nodes) + "\n", nil
		}}, activeNode); err != nil {
			return err
		}
	}
	return nil
}

// RangeList formats sorted ints as the kernel's node masks print: "0-1,3".
func RangeList(ns []int) string {
	var b strings.Builder
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ns[i], ns[j])
		} else {
			fmt.Fprintf(&b, "%d", ns[i])
		}
		i = j + 1
	}
	return b.String()
}

// meminfo renders node n's counts as the kernel's nodeN/meminfo does (the
// lines hotslab has).
func (v *memoryView) meminfo(n int) string {
	var total, free int64
	for _, b := range v.sys.Blocks() {
		if b.Node != n || b.State != mem.BlockOnline {
			continue
		}
		total += v.sys.BlockSize()
		free += int64(b.FreePages) * mem.PageSize
	}
	return fmt.Sprintf("Node %d MemTotal:       %8d kB\nNode %d MemFree:        %8d kB\nNode %d MemUsed:        %8d kB\n",
		n, total>>10, n, free>>10, n, (total-free)>>10)
}

// BlockAdded creates memoryN and its node's link (mem calls it with
// device_hotplug_lock held).
func (v *memoryView) BlockAdded(id int) {
	sys := v.sys
	bi, err := sys.Block(id)
	if err != nil {
		return
	}
	d, err := v.memDir.Mkdir(fmt.Sprintf("memory%d", id), 0o755)
	if err != nil {
		return
	}
	ro := func(name string, show func() (string, error)) {
		_, _ = d.AddFile(name, 0o444, Attr{Show: show}, activeRO)
	}
	ro("phys_index", func() (string, error) { return fmt.Sprintf("%08x\n", id), nil })
	ro("phys_device", func() (string, error) { return "0\n", nil })
	ro("removable", func() (string, error) { return "1\n", nil })
	ro("valid_zones", func() (string, error) {
		bi, err := sys.Block(id)
		if err != nil {
			return "", fmt.Errorf("memory%d: %w", id, syscall.ENODEV)
		}
		if bi.State == mem.BlockOnline { // going-offline prints as offline does
			return bi.Zone.String() + "\n", nil
		}
		zs := make([]string, len(bi.ValidZones))
		for i, z := range bi.ValidZones {
			zs[i] = z.String()
		}
		return strings.Join(zs, " ") + "\n", nil
	})
	_, _ = d.AddFile("state", 0o644, Attr{
		Show: func() (string, error) {
			bi, err := sys.Block(id)
			if err != nil {
				return "", fmt.Errorf("memory%d: %w", id, syscall.ENODEV)
			}
			return bi.State.String() + "\n", nil
		},
		Store: func(ctx context.Context, data string) error { return v.storeState(ctx, id, data) },
	}, activeState)
	_, _ = d.AddFile("online", 0o644, Attr{
		Show: func() (string, error) {
			bi, err := sys.Block(id)
			if err != nil {
				return "", fmt.Errorf("memory%d: %w", id, syscall.ENODEV)
			}
			if bi.State == mem.BlockOffline {
				return "0\n", nil
			}
			return "1\n", nil
		},
		Store: func(ctx context.Context, data string) error { return v.storeOnline(ctx, id, data) },
	}, activeOnline)
	nodeName := fmt.Sprintf("node%d", bi.Node)
	_, _ = d.AddLink(nodeName, "../../node/"+nodeName)
	var link *Node
	if nd := v.nodeDir.Lookup(nodeName); nd != nil {
		link, _ = nd.AddLink(fmt.Sprintf("memory%d", id), fmt.Sprintf("../../memory/memory%d", id))
	}
	v.mu.Lock()
	v.blocks[id] = []*Node{d, link}
	v.mu.Unlock()
}

// BlockRemoving removes memoryN and its node's link, waiting for their
// active references (mem calls it with device_hotplug_lock held).
func (v *memoryView) BlockRemoving(id int) {
	v.mu.Lock()
	nodes := v.blocks[id]
	delete(v.blocks, id)
	v.mu.Unlock()
	for _, n := range nodes {
		if n != nil {
			_ = n.Remove()
		}
	}
}

// storeState performs a write to memoryN/state: online, online_kernel,
// online_movable or offline, with or without a newline; asking for the
// state the block is in is EINVAL. Kernel: state_store().
func (v *memoryView) storeState(ctx context.Context, id int, data string) error {
	// sysfs_streq: the word, with at most one newline after it.
	word := strings.TrimSuffix(data, "\n")
	var kind mem.OnlineKind
	offline := word == "offline"
	switch word {
	case "offline":
	case mem.OnlineDefault.String():
		kind = mem.OnlineDefault
	case mem.OnlineKernel.String():
		kind = mem.OnlineKernel
	case mem.OnlineMovable.String():
		kind = mem.OnlineMovable
	default:
		return fmt.Errorf("state %q: %w", data, syscall.EINVAL)
	}
	sys := v.sys
	if !sys.TryLockDeviceHotplug() {
		return ErrRestart
	}
	defer sys.UnlockDeviceHotplug()
	bi, err := sys.Block(id)
	if err != nil {
		return fmt.Errorf("memory%d: %w", id, syscall.ENODEV)
	}
	if offline {
		if bi.State == mem.BlockOffline {
			return fmt.Errorf("memory%d: already offline: %w", id, syscall.EINVAL)
		}
		return sys.OfflineLocked(ctx, id)
	}
	if bi.State == mem.BlockOnline {
		return fmt.Errorf("memory%d: already online: %w", id, syscall.EINVAL)
	}
	return sys.OnlineLocked(ctx, id, kind)
}

// storeOnline performs a write to memoryN/online: any kernel bool; the
// state the block is in already is success. Kernel: online_store() via
// device_online/device_offline.
func (v *memoryView) storeOnline(ctx context.Context, id int, data string) error {
	on, err := ParseBool(data)
	if err != nil {
		return err
	}
	sys := v.sys
	if !sys.TryLockDeviceHotplug() {
		return ErrRestart
	}
	defer sys.UnlockDeviceHotplug()
	bi, err := sys.Block(id)
	if err != nil {
		return fmt.Errorf("memory%d: %w", id, syscall.ENODEV)
	}
	switch {
	case on && bi.State == mem.BlockOnline, !on && bi.State == mem.BlockOffline:
		return nil
	case on:
		return sys.OnlineLocked(ctx, id, mem.OnlineDefault)
	default:
		return sys.OfflineLocked(ctx, id)
	}
}

// ParseBool parses a kernel bool (kstrtobool): 1/y/Y/t/T/on true,
// 0/n/N/f/F/off false, a trailing newline allowed; else EINVAL.
func ParseBool(s string) (bool, error) {
	s = strings.TrimSuffix(s, "\n")
	if s != "" {
		switch s[0] {
		case '1', 'y', 'Y', 't', 'T':
			return true, nil
		case '0', 'n', 'N', 'f', 'F':
			return false, nil
		case 'o', 'O':
			if len(s) > 1 {
				switch s[1] {
				case 'n', 'N':
					return true, nil
				case 'f', 'F':
					return false, nil
				}
			}
		}
	}
	return false, fmt.Errorf("bool %q: %w", s, syscall.EINVAL)
}
