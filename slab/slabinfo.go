package slab

import (
	"bufio"
	"fmt"
	"io"
)

// WriteSlabinfo writes the allocator's caches in the format of
// /proc/slabinfo version 2.1, one line per underlying cache in creation
// order, so that slabtop and other readers parse it unchanged.
// Kernel: slab_show() / cache_show().
func (a *Allocator) WriteSlabinfo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("slabinfo - version: 2.1\n")
	bw.WriteString("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n")
	for _, ci := range a.Caches() {
		st := ci.Stats()
		slabs := st.Slabs()
		fmt.Fprintf(bw, "%-17s %6d %6d %6d %4d %4d : tunables %4d %4d %4d : slabdata %6d %6d %6d\n",
			ci.Name, st.ActiveObjects(), st.Objects(), st.Size, st.ObjsPerSlab, 1<<st.Order,
			0, 0, 0, slabs, slabs, 0)
	}
	return bw.Flush()
}
