package sysfs

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
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
	u, err := parseUint(t)
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
	u, err := parseUint(strings.TrimSuffix(s, "\n"))
	if err != nil {
		return 0, fmt.Errorf("number %q: %w", s, syscall.EINVAL)
	}
	return u, nil
}

func parseUint(t string) (uint64, error) {
	base := 10
	switch {
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X"):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base, t = 8, t[1:]
	}
	if t == "" || strings.ContainsAny(t, "_+-") {
		return 0, syscall.EINVAL
	}
	return strconv.ParseUint(t, base, 64)
}
