//go:build linux

// The memory and node notifier chains: their events (MemoryEvent,
// NodeEvent) and arguments, the chain type, and registration.

package mem

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"syscall"

	"github.com/hotslab/hotslab/lockdep"
)

// MemoryEvent is an event of the memory notifier chain.
type MemoryEvent int

const (
	// MemGoingOnline is sent before a block's pages are onlined; it may
	// fail, which cancels the online.
	MemGoingOnline MemoryEvent = iota
	// MemOnline is sent after a block is online.
	MemOnline
	// MemCancelOnline is sent to every subscriber when an online failed
	// after MemGoingOnline.
	MemCancelOnline
	// MemGoingOffline is sent after the block is isolated, before its
	// pages are migrated; it may fail, which cancels the offline.
	MemGoingOffline
	// MemOffline is sent after a block is offline.
	MemOffline
	// MemCancelOffline is sent to every subscriber when an offline failed
	// after the block was isolated.
	MemCancelOffline
)

var memEventNames = [...]string{"MEM_GOING_ONLINE", "MEM_ONLINE", "MEM_CANCEL_ONLINE",
	"MEM_GOING_OFFLINE", "MEM_OFFLINE", "MEM_CANCEL_OFFLINE"}

// String returns the kernel's name of e, e.g. "MEM_GOING_ONLINE".
func (e MemoryEvent) String() string {
	if e >= 0 && int(e) < len(memEventNames) {
		return memEventNames[e]
	}
	return fmt.Sprintf("MemoryEvent(%d)", int(e))
}

// ParseMemoryEvent parses a kernel event name such as "MEM_GOING_ONLINE".
func ParseMemoryEvent(s string) (MemoryEvent, error) {
	for i, n := range memEventNames {
		if s == n {
			return MemoryEvent(i), nil
		}
	}
	return 0, fmt.Errorf("mem: unknown memory event %q: %w", s, syscall.EINVAL)
}

// MemoryNotify is the argument of a memory event. Kernel: struct
// memory_notify.
type MemoryNotify struct {
	StartPFN, NrPages uint64 // pfn = physical address >> PageShift
	Block, Node       int
}

// notifyArg is the MemoryNotify of the events about block b.
func (s *System) notifyArg(b *block) MemoryNotify {
	return MemoryNotify{StartPFN: uint64(b.index) << (s.blockShift - PageShift),
		NrPages: uint64(s.pagesPerBlock), Block: b.index, Node: b.node}
}

// NodeEvent is an event of the node notifier chain (Linux 6.17+).
type NodeEvent int

const (
	// NodeAddingFirstMemory: a node without memory is about to get some;
	// may fail, which cancels the online.
	NodeAddingFirstMemory NodeEvent = iota
	// NodeAddedFirstMemory: the node has memory (N_MEMORY) now.
	NodeAddedFirstMemory
	// NodeCancelAddingFirstMemory: the online that would have given the
	// node its first memory failed.
	NodeCancelAddingFirstMemory
	// NodeRemovingLastMemory: the node's last online block is going
	// offline; may fail, which cancels the offline.
	NodeRemovingLastMemory
	// NodeRemovedLastMemory: the node has no memory any more.
	NodeRemovedLastMemory
	// NodeCancelRemovingLastMemory: the offline of the last block failed.
	NodeCancelRemovingLastMemory
)

var nodeEventNames = [...]string{"NODE_ADDING_FIRST_MEMORY", "NODE_ADDED_FIRST_MEMORY",
	"NODE_CANCEL_ADDING_FIRST_MEMORY", "NODE_REMOVING_LAST_MEMORY",
	"NODE_REMOVED_LAST_MEMORY", "NODE_CANCEL_REMOVING_LAST_MEMORY"}

// String returns the kernel's name of e, e.g. "NODE_ADDING_FIRST_MEMORY".
func (e NodeEvent) String() string {
	if e >= 0 && int(e) < len(nodeEventNames) {
		return nodeEventNames[e]
	}
	return fmt.Sprintf("NodeEvent(%d)", int(e))
}

// ParseNodeEvent parses a kernel event name such as
// "NODE_ADDING_FIRST_MEMORY".
func ParseNodeEvent(s string) (NodeEvent, error) {
	for i, n := range nodeEventNames {
		if s == n {
			return NodeEvent(i), nil
		}
	}
	return 0, fmt.Errorf("mem: unknown node event %q: %w", s, syscall.EINVAL)
}

// chain is a blocking notifier chain: callbacks sorted by priority
// (higher first; equal priorities in registration order), called with the
// chain's rwsem held for reading. Kernel: struct blocking_notifier_head.
type chain[E fmt.Stringer, A any] struct {
	name string
	mu   lockdep.RWMutex
	seq  uint64
	subs []sub[E, A]
}

type sub[E fmt.Stringer, A any] struct {
	id   uint64
	name string
	prio int
	fn   func(E, A) error
}

func (c *chain[E, A]) init(cl *lockdep.Class, name string) {
	c.mu.Init(cl)
	c.name = name
}

func (c *chain[E, A]) register(name string, prio int, fn func(E, A) error) func() {
	c.mu.Lock()
	c.seq++
	id := c.seq
	i := 0
	for i < len(c.subs) && c.subs[i].prio >= prio {
		i++
	}
	c.subs = slices.Insert(c.subs, i, sub[E, A]{id: id, name: name, prio: prio, fn: fn})
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.subs = slices.DeleteFunc(c.subs, func(x sub[E, A]) bool { return x.id == id })
		c.mu.Unlock()
	}
}

// call runs the chain until a callback fails; it returns that failure,
// wrapping the callback's errno (EPERM if it carries none, as the
// kernel's notifier_to_errno does for a bare NOTIFY_BAD).
// Kernel: blocking_notifier_call_chain().
func (c *chain[E, A]) call(e E, a A) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, x := range c.subs {
		if err := x.fn(e, a); err != nil {
			var errno syscall.Errno
			if !errors.As(err, &errno) {
				return fmt.Errorf("mem: %s notifier %q refused %v: %w: %w", c.name, x.name, e, syscall.EPERM, err)
			}
			return fmt.Errorf("mem: %s notifier %q refused %v: %w", c.name, x.name, e, err)
		}
	}
	return nil
}

// callAll runs every callback; failures (not allowed for these events)
// are logged.
func (c *chain[E, A]) callAll(log *slog.Logger, e E, a A) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, x := range c.subs {
		if err := x.fn(e, a); err != nil {
			log.Warn("mem: notifier failed an event that cannot fail", "chain", c.name,
				"notifier", x.name, "event", e.String(), "err", err)
		}
	}
}

// RegisterMemoryNotifier adds fn to the memory notifier chain with the
// given priority (higher runs first; slab uses 1) and returns a function
// that removes it. fn runs with device_hotplug_lock, the block's device
// lock, mem_hotplug_lock (write) and the chain's lock (read) held: it may
// take locks that order after those (slab_mutex) and allocate or free
// pages, but must not call GetOnlineMems, a hotplug operation or
// (un)register a notifier. Only MemGoingOnline and MemGoingOffline may
// fail; the error's syscall.Errno becomes the operation's.
// Kernel: register_memory_notifier().
func (s *System) RegisterMemoryNotifier(name string, priority int, fn func(MemoryEvent, MemoryNotify) error) (unregister func()) {
	return s.memChain.register(name, priority, fn)
}

// RegisterNodeNotifier adds fn to the node notifier chain (events carry
// the node id), with the same rules as RegisterMemoryNotifier; only
// NodeAddingFirstMemory and NodeRemovingLastMemory may fail.
// Kernel: register_node_notifier().
func (s *System) RegisterNodeNotifier(name string, priority int, fn func(NodeEvent, int) error) (unregister func()) {
	return s.nodeChain.register(name, priority, fn)
}
