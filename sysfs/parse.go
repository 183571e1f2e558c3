package sysfs

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/hotslab/hotslab/internal/kstrto"
)

// ParseInt parses a number as the kernel's kstrtoll with base 0 does: an
// optional sign, then "0x" hex, a leading "0" octal, or decimal, with at
// most one trailing newline; no underscores, no "0b" or "0o" (which Go's
// own base-0 parsing would take). Anything else is EINVAL.
func ParseInt(s string) (int64, error) {
	t := strings.TrimSuffix(s, "\n")
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	u, err := kstrto.Uint(t, 64)
	if err != nil || (!neg && u > 1<<63-1) || (neg && u > 1<<63) {
		return 0, fmt.Errorf("number %q: %w", s, syscall.EINVAL)
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// ParseUint is ParseInt for an unsigned number (kstrtoull, base 0).
func ParseUint(s string) (uint64, error) {
	u, err := kstrto.Uint(strings.TrimSuffix(s, "\n"), 64)
	if err != nil {
		return 0, fmt.Errorf("number %q: %w", s, syscall.EINVAL)
	}
	return u, nil
}
