package percpu_test

import (
	"fmt"
	"sync/atomic"

	"github.com/hotslab/hotslab/internal/percpu"
)

// A per-P counter: an increment touches only the running P's slot, with no
// atomic instruction; a reader sums the slots after a grace period. A P id
// beyond the slots (GOMAXPROCS raised past the CPU count) falls back to a
// shared atomic counter.
func Example() {
	type slot struct {
		n int64
		_ [percpu.CacheLine - 8]byte
	}
	slots := make([]slot, percpu.MaxProcs())
	var beyond atomic.Int64
	for range 1000 {
		pid := percpu.Pin()
		if pid < len(slots) {
			slots[pid].n++
		} else {
			beyond.Add(1)
		}
		percpu.Unpin()
	}
	percpu.Synchronize() // every increment begun before this has finished
	sum := beyond.Load()
	for i := range slots {
		sum += slots[i].n
	}
	fmt.Println(sum)
	// Output: 1000
}
