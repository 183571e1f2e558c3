package lockdep_test

import (
	"fmt"

	"github.com/hotslab/hotslab/lockdep"
)

// Two code paths take the same two classes of lock in opposite orders.
// They never collide in this run, yet lockdep reports the deadlock the
// first time the second order is tried.
func Example() {
	lockdep.Reset()
	defer lockdep.Reset()
	var got []lockdep.Report
	old := lockdep.SetHandler(func(r lockdep.Report) { got = append(got, r) })
	defer lockdep.SetHandler(old)

	inode := lockdep.NewMutex(lockdep.NewClass("inode_lock"))
	page := lockdep.NewMutex(lockdep.NewClass("page_lock"))

	inode.Lock() // path 1: inode then page
	page.Lock()
	page.Unlock()
	inode.Unlock()

	page.Lock() // path 2: page then inode
	inode.Lock()
	inode.Unlock()
	page.Unlock()

	fmt.Println(got[0].Kind)
	fmt.Println(got[0].Lock, "while holding", got[0].Held)
	// Output:
	// possible circular locking dependency detected
	// inode_lock while holding page_lock
}

// The per-P read-write semaphore: readers touch only their P's counter.
func ExamplePerPRWSem() {
	memHotplug := lockdep.NewPerPRWSem(lockdep.NewClass("mem_hotplug_lock"))
	memHotplug.RLock() // get_online_mems()
	fmt.Println("reading with hotplug excluded")
	memHotplug.RUnlock() // put_online_mems()

	memHotplug.Lock() // a hotplug operation
	fmt.Println("writing")
	memHotplug.Unlock()
	// Output:
	// reading with hotplug excluded
	// writing
}

// Subclasses annotate the legitimate nesting of two locks of one class.
func ExampleMutex_LockNested() {
	lockdep.Reset()
	defer lockdep.Reset()
	class := lockdep.NewClass("&n->list_lock")
	a, b := lockdep.NewMutex(class), lockdep.NewMutex(class)
	a.Lock()
	b.LockNested(1)
	b.Unlock()
	a.Unlock()
	fmt.Println("reports:", lockdep.ReportCount())
	// Output: reports: 0
}
