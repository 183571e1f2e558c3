//go:build amd64 && !race && go1.26 && !go1.27

package slab

import "github.com/hotslab/hotslab/internal/percpu"

// The per-P fast paths in assembly (fast_amd64.s): one call, no pin.

// procID returns the id of the running goroutine's P, read from the
// runtime's g → m → p (the caller must not rely on it staying so).
func procID() int

//go:noescape
func allocFast(k *cache) uintptr

//go:noescape
func freeFast(k *cache, addr, node uintptr) uintptr

// fastPath is whether the assembly fast paths are used: their runtime
// offsets must agree with runtime.procPin, else the pinned Go paths run.
var fastPath = procIDAgrees()

func procIDAgrees() bool {
	pid := percpu.Pin()
	got := procID()
	percpu.Unpin()
	return got == pid
}
