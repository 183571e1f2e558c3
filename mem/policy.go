//go:build linux

// Policy, the auto-online policy for hot-added blocks
// (auto_online_blocks), and OnlineKind, the zone choice of an Online (the
// words written to a block's sysfs state file), with their sysfs words and
// parsers.

package mem

import (
	"fmt"
	"strings"
	"syscall"
)

// Policy is what happens to a hot-added block: the values of
// /sys/devices/system/memory/auto_online_blocks.
type Policy int

const (
	// PolicyOffline leaves added blocks offline.
	PolicyOffline Policy = iota
	// PolicyOnline onlines added blocks into their default zone.
	PolicyOnline
	// PolicyOnlineKernel onlines added blocks into ZoneNormal.
	PolicyOnlineKernel
	// PolicyOnlineMovable onlines added blocks into ZoneMovable.
	PolicyOnlineMovable
)

var policyNames = [...]string{"offline", "online", "online_kernel", "online_movable"}

// String returns the sysfs word for p.
func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses a sysfs auto_online_blocks word (a trailing newline
// is allowed). Unknown words fail with an error wrapping syscall.EINVAL.
func ParsePolicy(s string) (Policy, error) {
	w := strings.TrimSuffix(s, "\n")
	for i, n := range policyNames {
		if w == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("mem: bad auto-online policy %q: %w", s, syscall.EINVAL)
}

// valid reports whether p is one of the Policy constants.
func (p Policy) valid() bool { return p >= PolicyOffline && p <= PolicyOnlineMovable }

// onlineKind is the OnlineKind an online-ing policy onlines with; ok is
// false for PolicyOffline and invalid policies.
func (p Policy) onlineKind() (k OnlineKind, ok bool) {
	switch p {
	case PolicyOnline:
		return OnlineDefault, true
	case PolicyOnlineKernel:
		return OnlineKernel, true
	case PolicyOnlineMovable:
		return OnlineMovable, true
	}
	return 0, false
}

// OnlineKind selects the zone an Online puts a block in: the words
// "online", "online_kernel" and "online_movable" written to a block's sysfs
// state file. Online refuses any other value with EINVAL.
type OnlineKind int

const (
	// OnlineDefault onlines into the block's default zone (the first of
	// its ValidZones): the word "online".
	OnlineDefault OnlineKind = iota
	// OnlineKernel onlines into ZoneNormal: "online_kernel".
	OnlineKernel
	// OnlineMovable onlines into ZoneMovable: "online_movable".
	OnlineMovable
)

var onlineKindNames = [...]string{"online", "online_kernel", "online_movable"}

// String returns the sysfs word for k.
func (k OnlineKind) String() string {
	if k.valid() {
		return onlineKindNames[k]
	}
	return fmt.Sprintf("OnlineKind(%d)", int(k))
}

// valid reports whether k is one of the OnlineKind constants.
func (k OnlineKind) valid() bool { return k >= 0 && int(k) < len(onlineKindNames) }

// ParseOnlineKind parses a word written to a block's sysfs state file to
// online it ("online", "online_kernel", "online_movable"; a trailing
// newline is allowed). Other words fail with an error wrapping
// syscall.EINVAL.
func ParseOnlineKind(s string) (OnlineKind, error) {
	w := strings.TrimSuffix(s, "\n")
	for i, n := range onlineKindNames {
		if w == n {
			return OnlineKind(i), nil
		}
	}
	return 0, fmt.Errorf("mem: bad online kind %q: %w", s, syscall.EINVAL)
}

// SetAutoOnline sets the policy for blocks added later; an invalid policy
// is ignored. Kernel: writing auto_online_blocks.
func (s *System) SetAutoOnline(p Policy) {
	if !p.valid() {
		s.log.Warn("mem: ignoring invalid auto-online policy", "policy", int(p))
		return
	}
	s.autoOnline.Store(int32(p))
}

// AutoOnline returns the policy for blocks added later.
// Kernel: reading auto_online_blocks.
func (s *System) AutoOnline() Policy { return Policy(s.autoOnline.Load()) }
