package lockdep_test

import (
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

// TestMain runs the validator's own tests as every hotslab test binary
// runs: lockdep on, and any report still recorded at the end fails the run.
// Tests that provoke reports on purpose call Reset when they finish, so a
// report that escapes a test is one nobody expected.
func TestMain(m *testing.M) { lockdeptest.Main(m) }
