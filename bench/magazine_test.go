package bench

// The hotslab-handle rows: a goroutine-owned slab.Magazine, whose Alloc
// is inlined into the loop and whose Free is one call with no P lookup.

import (
	"testing"
)

func init() {
	registerPair("hotslab-handle", benchPairHotslabHandle)
	registerPairParallel("hotslab-handle", benchPairParallelHotslabHandle)
}

func benchPairHotslabHandle(b *testing.B) {
	c := hotslabCache(b)
	m, err := c.NewMagazine(0)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.Free(m.Alloc()) // fill it once
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := m.Alloc()
		*(*byte)(p) = byte(i)
		m.Free(p)
	}
}

func benchPairParallelHotslabHandle(b *testing.B) {
	c := hotslabCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m, err := c.NewMagazine(0)
		if err != nil {
			b.Error(err)
			return
		}
		defer m.Close()
		i := 0
		for pb.Next() {
			p := m.Alloc()
			*(*byte)(p) = byte(i)
			m.Free(p)
			i++
		}
	})
}
