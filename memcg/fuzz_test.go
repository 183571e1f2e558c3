package memcg_test

import (
	"errors"
	"math"
	"strconv"
	"syscall"
	"testing"

	"github.com/hotslab/hotslab/memcg"
)

// FuzzParseLimit: anything parses to "max", a whole number of pages, or
// EINVAL; a number written back parses to itself.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max", "max\n", "4096", "1K", "64M\n", "1G", "0x1000", "-1", "", "9999999999999999999T", " 2G "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := memcg.ParseLimit(s)
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("ParseLimit(%q): %v, not EINVAL", s, err)
			}
			return
		}
		if n != math.MaxInt64 && (n < 0 || n%4096 != 0) {
			t.Fatalf("ParseLimit(%q) = %d: not whole pages", s, n)
		}
		if n != math.MaxInt64 {
			if m, err := memcg.ParseLimit(strconv.FormatInt(n, 10)); err != nil || m != n {
				t.Fatalf("round trip of %d: %d, %v", n, m, err)
			}
		}
	})
}
