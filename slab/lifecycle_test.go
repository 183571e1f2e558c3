package slab

import "testing"

// Create/destroy cycles reuse cache ids, so the id table (copied on every
// create and destroy) stays the size of the live caches.
func TestCacheIDsReused(t *testing.T) {
	e := newEnv(t, memCfg())
	base := len(*e.a.table.Load())
	for i := 0; i < 2000; i++ {
		c := e.cache("cycle", 64+8*(i%5), &CacheOptions{Flags: NoMerge})
		p, err := c.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		c.Free(p)
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(*e.a.table.Load()); n > base+1 {
		t.Fatalf("id table grew from %d to %d entries over 2000 create/destroy cycles", base, n)
	}
}
