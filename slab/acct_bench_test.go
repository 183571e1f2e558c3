package slab

import "testing"

// BenchmarkAccountedFloor is the floor under an accounted pair that keeps
// a per-object charge record in its slab: the plain pair (Cache.Alloc,
// Cache.Free, the assembly paths) of an accounted cache's geometry plus
// one read of the object's vector entry, the dependent chain every
// accounted allocation must walk (sheaf top → struct page → vector
// entry). Beside it, the plain pair alone and GroupCache's pair.
// Checked with go tool objdump: the floor's loop is the two assembly
// calls, the byte store, and the chain (the mask, hdrAt's range check,
// shift, multiply and header loads, objExt's reciprocal and geometry
// loads) ending in one 4-byte load of the entry.
func BenchmarkAccountedFloor(b *testing.B) {
	e := newEnv(b, memCfg())
	plain := e.cache("floor-plain", 64, &CacheOptions{Flags: NoMerge})
	acct := e.cache("floor-acct", 64, &CacheOptions{Flags: NoMerge | Account})
	g, err := e.a.Memcg().Root().Create("floor")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain-pair", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p, _ := plain.Alloc()
			*(*byte)(p) = byte(i)
			plain.Free(p)
		}
	})
	// A plain Cache.Alloc of an accounted cache takes the Go path (it
	// drops a stale charge): the floor pops with the assembly path of the
	// plain cache and reads an accounted slab's entry, so that it adds
	// nothing but the entry read.
	k := acct.c
	q, _ := acct.In(g).Alloc()
	h := k.hdrAt(uintptr(q))
	b.Run("plain-pair+entry-read", func(b *testing.B) {
		var sum uint32
		for i := 0; i < b.N; i++ {
			p, _ := plain.Alloc()
			*(*byte)(p) = byte(i)
			// The chain of the accounted pair, on an accounted
			// slab's object at p's offset in its slab (masked to
			// the slab's first 2 KiB: 60 objects fill 3840 bytes).
			a := h.base + uintptr(p)&(2048-1)
			sum += *k.objExt(k.hdrAt(a), a)
			plain.Free(p)
		}
		sink = sum
	})
	acct.Free(q)
	b.Run("group-pair", func(b *testing.B) {
		gc := acct.In(g)
		for i := 0; i < b.N; i++ {
			p, _ := gc.Alloc()
			*(*byte)(p) = byte(i)
			acct.Free(p)
		}
	})
}

var sink uint32
