//go:build linux

// Tests of the Policy and OnlineKind words and parsers.

package mem

import (
	"errors"
	"syscall"
	"testing"
)

// TestParseWords: every Policy and OnlineKind string parses back to itself
// (with or without a trailing newline) and anything else is EINVAL.
func TestParseWords(t *testing.T) {
	for p := PolicyOffline; p <= PolicyOnlineMovable; p++ {
		for _, w := range []string{p.String(), p.String() + "\n"} {
			if got, err := ParsePolicy(w); err != nil || got != p {
				t.Errorf("ParsePolicy(%q) = %v, %v; want %v", w, got, err, p)
			}
		}
	}
	for k := OnlineDefault; k <= OnlineMovable; k++ {
		for _, w := range []string{k.String(), k.String() + "\n"} {
			if got, err := ParseOnlineKind(w); err != nil || got != k {
				t.Errorf("ParseOnlineKind(%q) = %v, %v; want %v", w, got, err, k)
			}
		}
	}
	for _, w := range []string{"", "\n", "Online", "online ", " online", "online\n\n",
		"online\r\n", "kernel", "movable", "online_", "Policy(0)", "OnlineKind(1)"} {
		if _, err := ParsePolicy(w); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParsePolicy(%q) = %v, want EINVAL", w, err)
		}
		if _, err := ParseOnlineKind(w); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseOnlineKind(%q) = %v, want EINVAL", w, err)
		}
	}
	// "offline" is a policy but not a way to online a block.
	if _, err := ParseOnlineKind("offline"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("ParseOnlineKind(offline) = %v, want EINVAL", err)
	}
	if s := OnlineKind(7).String(); s != "OnlineKind(7)" {
		t.Errorf("OnlineKind(7).String() = %q", s)
	}
	if s := Policy(-1).String(); s != "Policy(-1)" {
		t.Errorf("Policy(-1).String() = %q", s)
	}
}
