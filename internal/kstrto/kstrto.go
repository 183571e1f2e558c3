// Package kstrto parses unsigned numbers as the kernel's kstrtoull and
// memparse do with base 0, for the files of memcg and sysfs: "0x" hex, a
// leading "0" octal, else decimal — no sign, no underscores, no "0b" or
// "0o" (which Go's own base-0 parsing would take).
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
