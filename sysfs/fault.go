// The fault injection knobs: sys/kernel/debug/failslab/ and
// sys/kernel/debug/fail_page_alloc/ (the kernel's debugfs files).

package sysfs

import (
	"context"
	"fmt"

	"github.com/hotslab/hotslab/fault"
	"github.com/hotslab/hotslab/mem"
	"github.com/hotslab/hotslab/slab"
)

// AddFaultInjection serves sys/kernel/debug/failslab/ (a's failslab:
// probability, interval, times, space, verbose, cache-filter) and
// sys/kernel/debug/fail_page_alloc/ (sys's: the same knobs and
// min-order), in the kernel's formats: numbers "%d\n", booleans "Y\n" or
// "N\n"; a bad value is EINVAL and changes nothing. The per-cache
// failslab flag is each cache's sys/kernel/slab/<cache>/failslab (AddSlab).
// The kernel's ignore-gfp-wait and ignore-gfp-highmem are not served:
// hotslab's GFP has no such flags.
func AddFaultInjection(t *Tree, sys *mem.System, a *slab.Allocator) error {
	debug, err := mkdirAll(t.Root(), "sys/kernel/debug")
	if err != nil {
		return err
	}
	fs, err := debug.Mkdir("failslab", 0o755)
	if err != nil {
		return err
	}
	if err := addFaultAttr(fs, a.Failslab()); err != nil {
		return err
	}
	if _, err := fs.AddFile("cache-filter", 0o600, boolFile(a.FailslabCacheFilter, a.SetFailslabCacheFilter), ActiveClass("debug/fault")); err != nil {
		return err
	}
	fp, err := debug.Mkdir("fail_page_alloc", 0o755)
	if err != nil {
		return err
	}
	if err := addFaultAttr(fp, sys.FailPageAlloc()); err != nil {
		return err
	}
	_, err = fp.AddFile("min-order", 0o600, intFile(func() int64 { return int64(sys.FailMinOrder()) },
		func(n int64) error { return sys.SetFailMinOrder(int(n)) }), ActiveClass("debug/fault"))
	return err
}

// addFaultAttr adds the fault_attr files of at to d.
func addFaultAttr(d *Node, at *fault.Attr) error {
	files := []struct {
		name string
		get  func() int64
		set  func(int64) error
	}{
		{"probability", func() int64 { return int64(at.Probability()) }, func(n int64) error { return at.SetProbability(int(n)) }},
		{"interval", at.Interval, at.SetInterval},
		{"times", at.Times, at.SetTimes},
		{"space", at.Space, at.SetSpace},
		{"verbose", func() int64 { return int64(at.Verbose()) }, func(n int64) error { return at.SetVerbose(int(n)) }},
	}
	for _, f := range files {
		if _, err := d.AddFile(f.name, 0o600, intFile(f.get, f.set), ActiveClass("debug/fault")); err != nil {
			return err
		}
	}
	return nil
}

// intFile is a debugfs integer file.
func intFile(get func() int64, set func(int64) error) Attr {
	return Attr{
		Show: func() (string, error) { return fmt.Sprintf("%d\n", get()), nil },
		Store: func(_ context.Context, data string) error {
			n, err := ParseInt(data)
			if err != nil {
				return err
			}
			return set(n)
		},
	}
}

// boolFile is a debugfs boolean file ("Y"/"N"; any kernel bool written).
func boolFile(get func() bool, set func(bool)) Attr {
	return Attr{
		Show: func() (string, error) {
			if get() {
				return "Y\n", nil
			}
			return "N\n", nil
		},
		Store: func(_ context.Context, data string) error {
			b, err := ParseBool(data)
			if err != nil {
				return err
			}
			set(b)
			return nil
		},
	}
}
