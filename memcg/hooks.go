package memcg

import "sync/atomic"

// Test hooks: points where a test stops a goroutine to force an
// interleaving (export_test.go sets them). Only slow paths run them.
const (
	hookChargeCounted = iota // chargeSlow: counters charged, target not yet re-read
	hookRemoveOffline        // Remove: offline and reparented, before the drain (cgroup_mutex held)
	hookCreateLocked         // Create: cgroup_mutex held, the child not yet made
	numHooks
)

var hooks [numHooks]atomic.Pointer[func()]

func runHook(h int) {
	if f := hooks[h].Load(); f != nil {
		(*f)()
	}
}
