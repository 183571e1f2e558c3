//go:build linux

// Every test of mem runs with lockdep on.

package mem

import (
	"testing"

	"github.com/hotslab/hotslab/lockdep/lockdeptest"
)

func TestMain(m *testing.M) { lockdeptest.Main(m) }
