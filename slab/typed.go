package slab

import (
	"fmt"
	"reflect"
	"unsafe"
)

// Typed is a cache of values of type T, handed out as *T. T must contain
// no Go pointers (no pointers, slices, strings, maps, channels, functions
// or interfaces): the objects live outside the Go heap, where the garbage
// collector does not look, so anything they pointed to could be freed.
type Typed[T any] struct {
	c *Cache
}

// NewTyped creates a cache for T, refusing any T that contains Go pointers.
func NewTyped[T any](a *Allocator, name string, opts *CacheOptions) (*Typed[T], error) {
	t := reflect.TypeFor[T]()
	if path, bad := pointerPath(t, t.String()); bad {
		return nil, fmt.Errorf("slab: cache %q: type %s holds a Go pointer at %s; off-heap objects must be pointer-free: %w", name, t, path, ErrInvalid)
	}
	var o CacheOptions
	if opts != nil {
		o = *opts
	}
	if al := int(t.Align()); al > o.Align {
		o.Align = al
	}
	size := int(t.Size())
	if size == 0 {
		size = 1
	}
	c, err := a.NewCache(name, size, &o)
	if err != nil {
		return nil, err
	}
	return &Typed[T]{c: c}, nil
}

// pointerPath reports whether t contains a Go pointer and where.
func pointerPath(t reflect.Type, path string) (string, bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Slice, reflect.String,
		reflect.Map, reflect.Chan, reflect.Func, reflect.Interface:
		return path + " (" + t.Kind().String() + ")", true
	case reflect.Array:
		if t.Len() == 0 {
			return "", false
		}
		return pointerPath(t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if p, bad := pointerPath(f.Type, path+"."+f.Name); bad {
				return p, true
			}
		}
	}
	return "", false
}

// New returns a zeroed *T.
func (t *Typed[T]) New() (*T, error) {
	p, err := t.c.Alloc()
	if err != nil {
		return nil, err
	}
	v := (*T)(p)
	var zero T
	*v = zero
	return v, nil
}

// Free returns v to the cache.
func (t *Typed[T]) Free(v *T) { t.c.Free(unsafe.Pointer(v)) }

// Cache returns the underlying cache.
func (t *Typed[T]) Cache() *Cache { return t.c }

// AllocBytes returns an object as a byte slice of the cache's object size.
func (c *Cache) AllocBytes() ([]byte, error) {
	p, err := c.Alloc()
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), c.c.objectSize.Load()), nil
}

// FreeBytes frees a slice from AllocBytes (its first byte must be the
// object start).
func (c *Cache) FreeBytes(b []byte) { c.Free(unsafe.Pointer(unsafe.SliceData(b))) }
