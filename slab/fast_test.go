package slab

import (
	"runtime"
	"sync"
	"testing"

	"github.com/hotslab/hotslab/internal/percpu"
)

// TestProcID checks the assembly fast path's reading of the runtime's
// g → m → p → id against runtime.procPin on every P, from goroutines that
// migrate between Ps. A Go release with another layout must fail here (and
// the build tag keeps the assembly to the release it was checked on); so
// must a build with the assembly whose init check turned it off.
func TestProcID(t *testing.T) {
	if !asmBuild {
		if asmExpected {
			t.Fatalf("amd64 without race or purego, on %s, but the assembly fast paths are not built: "+
				"re-derive the runtime offsets for this Go release and widen fast_amd64's build tag (see fast_amd64.s)", runtime.Version())
		}
		t.Skip("no assembly fast path in this build (race, purego or not amd64)")
	}
	if !fastPath {
		t.Error("assembly fast path disabled at init: procID disagreed with runtime.procPin")
	}
	procs := max(runtime.GOMAXPROCS(0), 2)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 4*procs; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				pid := percpu.Pin()
				got := procID()
				percpu.Unpin()
				if got != pid {
					t.Errorf("procID %d on P %d", got, pid)
					return
				}
				mu.Lock()
				seen[pid] = true
				mu.Unlock()
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("checked on Ps %v", seen)
	if len(seen) < 2 {
		t.Logf("only %d P seen: the check could not tell P ids apart", len(seen))
	}
}
