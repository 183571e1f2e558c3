//go:build amd64 && !race && go1.26 && !go1.27

package slab

import "github.com/hotslab/hotslab/internal/percpu"

// The per-P fast paths in assembly (fast_amd64.s): one call, no pin.

// procID returns the id of the running goroutine's P, read from the
// runtime's g → m → p (the caller must not rely on it staying so).
func procID() int

// allocFast pops the P's main sheaf, 0 if the slow path must run.
// Kernel: alloc_from_pcs().
//
//go:noescape
func allocFast(k *cache) uintptr

// freeFast pushes a validated object of node onto the P's main sheaf: 0
// done, 1 slow path, 2 double free (addr on top). Kernel: free_to_pcs().
//
//go:noescape
func freeFast(k *cache, addr, node uintptr) uintptr

// asmBuild: this build has the assembly fast paths.
const asmBuild = true

// fastPath is whether the assembly fast paths are used: their runtime
// offsets must agree with runtime.procPin, else the pinned Go paths run.
var fastPath = procIDAgrees()

func procIDAgrees() bool {
	pid := percpu.Pin()
	got := procID()
	percpu.Unpin()
	return got == pid
}
