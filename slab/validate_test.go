package slab

import (
	"errors"
	"strconv"
	"testing"
	"unsafe"
)

// Validate accepts healthy caches and finds a damaged freelist and a
// wrong in-use count.
func TestValidate(t *testing.T) {
	e := newEnv(t, memCfg())
	for _, size := range []int{64, 96, 3000} {
		c := e.cache("validate-"+strconv.Itoa(size), size, &CacheOptions{Flags: NoMerge})
		var objs []unsafe.Pointer
		for range 200 {
			p, err := c.Alloc()
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, p)
		}
		for i, p := range objs {
			if i%3 != 0 {
				c.Free(p)
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("size %d, healthy: %v", size, err)
		}
		// Damage: a free object's free pointer overwritten (a
		// use-after-free write), on a partial slab.
		k := c.c
		cn := k.nodes[0].Load()
		if cn.partial.n == 0 {
			cn = k.nodes[1].Load()
		}
		cn.listLock.Lock()
		s := cn.partial.first(k.a)
		obj := s.base + uintptr(s.freelist-1)
		saved := loadWord(obj + k.fpOffset)
		storeWord(obj+k.fpOffset, 0xdeadbeef)
		cn.listLock.Unlock()
		if err := c.Validate(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("size %d, damaged freelist: %v", size, err)
		}
		cn.listLock.Lock()
		storeWord(obj+k.fpOffset, saved)
		s.inuse++
		cn.listLock.Unlock()
		if err := c.Validate(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("size %d, wrong inuse: %v", size, err)
		} else {
			t.Logf("size %d: %v", size, err)
		}
		cn.listLock.Lock()
		s.inuse--
		cn.listLock.Unlock()
		if err := c.Validate(); err != nil {
			t.Fatalf("size %d, repaired: %v", size, err)
		}
		for i, p := range objs {
			if i%3 == 0 {
				c.Free(p)
			}
		}
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
}
