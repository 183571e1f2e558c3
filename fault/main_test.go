package fault_test

import (
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }
