package slab

import (
	"testing"
	"unsafe"
)

// BenchmarkBulkNode times FreeBulk's validation of a 64-object batch of
// one slab alone (ns per object).
func BenchmarkBulkNode(b *testing.B) {
	e := newEnv(b, memCfg())
	c := e.cache("bn-64", 64, &CacheOptions{Flags: NoMerge})
	objs := make([]unsafe.Pointer, 64)
	if err := c.AllocBulk(objs); err != nil {
		b.Fatal(err)
	}
	k := c.c
	for i := 0; i < b.N; i++ {
		if k.bulkNode(objs) < 0 {
			b.Fatal("invalid")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/obj")
	c.FreeBulk(objs)
}
