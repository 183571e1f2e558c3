package lockdep

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// MaxSubclasses is the number of subclasses a class may have (the kernel's
// MAX_LOCKDEP_SUBCLASSES).
const MaxSubclasses = 8

// Class is a lock class: every lock initialised with one Class shares one
// set of dependencies, so an ordering observed on any two instances is
// enforced on all of them. Create a class once per kind of lock, typically
// as a package variable (the kernel's static lock_class_key).
type Class struct {
	name string
	subs [MaxSubclasses]atomic.Pointer[node]
}

// NewClass returns a new lock class with the given name. The name appears
// in reports; it need not be unique, but distinct names make reports
// readable.
func NewClass(name string) *Class {
	if name == "" {
		name = "(unnamed)"
	}
	return &Class{name: name}
}

// Name returns the class name.
func (c *Class) Name() string { return c.name }

// String returns the class name.
func (c *Class) String() string { return c.name }

// node is one vertex of the dependency graph: a (class, subclass) pair.
// Fields other than id, class and sub are guarded by graphMu.
type node struct {
	id    int32
	class *Class
	sub   uint8
	out   []*edge
	// usage bits for the report's {+.+.} annotation
	usedWrite, usedRead bool
}

func (n *node) name() string {
	if n.sub == 0 {
		return n.class.name
	}
	return fmt.Sprintf("%s/%d", n.class.name, n.sub)
}

// edge is a dependency from one node to another. mask holds the edge types
// seen so far (depEN|depER|depSN|depSR); stack[i] is the Go stack that first
// recorded type bit i.
type edge struct {
	from, to *node
	mask     uint8
	stack    [4][]uintptr
}

var (
	// graphMu protects the dependency graph. It is lockdep's own raw lock
	// (the kernel's lockdep_lock, an arch spinlock) and is not validated.
	graphMu sync.Mutex
	nodes   []*node
)

// nodeFor returns the graph node of class c, subclass sub, creating it.
func (c *Class) nodeFor(sub int) *node {
	if n := c.subs[sub].Load(); n != nil {
		return n
	}
	graphMu.Lock()
	defer graphMu.Unlock()
	if n := c.subs[sub].Load(); n != nil {
		return n
	}
	n := &node{id: int32(len(nodes)), class: c, sub: uint8(sub)}
	nodes = append(nodes, n)
	c.subs[sub].Store(n)
	return n
}
