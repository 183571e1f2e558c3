package bench

import (
	"flag"
	"os"
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

// TestMain runs the tests with lockdep on (any report fails the run), as
// every hotslab test binary does. Benchmark runs (-test.bench set) keep the
// validator off so that its bookkeeping on the slow paths does not bias
// the numbers.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	lockdeptest.Main(m)
}
