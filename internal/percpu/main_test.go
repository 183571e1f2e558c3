package percpu_test

import (
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

// TestMain runs the tests with lockdep on, as every hotslab test binary
// does (percpu itself takes no lock).
func TestMain(m *testing.M) { lockdeptest.Main(m) }
