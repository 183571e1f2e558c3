//go:build linux

// Small helpers shared by tests.

package mem

import "unsafe"

func uintptrOf(p *int) uintptr { return uintptr(unsafe.Pointer(p)) }
