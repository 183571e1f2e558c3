// Package kstrto parses unsigned numbers as the kernel's kstrtoull and
// memparse do with base 0, for the files of memcg and sysfs and the
// command's sizes: "0x" hex, a leading "0" octal, else decimal — no sign,
// no underscores, no "0b" or "0o" (which Go's own base-0 parsing would
// take) — and memparse's K, M, G, T suffixes.
package kstrto

import (
	"strconv"
	"strings"
	"syscall"
)

// Uint parses t (already trimmed of any newline or suffix) into a number
// of at most bits bits. A malformed number is syscall.EINVAL; one too
// large is strconv's range error.
func Uint(t string, bits int) (uint64, error) {
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
	return strconv.ParseUint(t, base, bits)
}

// SplitSuffix splits a memparse size suffix — K, M, G or T, either case,
// powers of 1024 — off t, returning the rest and its multiplier (1
// without a suffix).
func SplitSuffix(t string) (string, int64) {
	if t == "" {
		return t, 1
	}
	var shift uint
	switch t[len(t)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	case 't', 'T':
		shift = 40
	default:
		return t, 1
	}
	return t[:len(t)-1], 1 << shift
}
