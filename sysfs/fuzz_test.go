package sysfs_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/hotslab/hotslab/sysfs"
)

// refBool is kstrtobool as the kernel documents it.
func refBool(s string) (bool, bool) {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return false, false
	}
	switch s[0] {
	case '1', 'y', 'Y', 't', 'T':
		return true, true
	case '0', 'n', 'N', 'f', 'F':
		return false, true
	case 'o', 'O':
		if len(s) > 1 {
			switch s[1] {
			case 'n', 'N':
				return true, true
			case 'f', 'F':
				return false, true
			}
		}
	}
	return false, false
}

func FuzzParseBool(f *testing.F) {
	for _, s := range []string{"1", "0", "y", "N", "on", "off", "oN\n", "o", "", "\n", "true", "2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := sysfs.ParseBool(s)
		want, ok := refBool(s)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("ParseBool(%q) = %v, %v; want %v, ok %v", s, got, err, want, ok)
		}
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("ParseBool(%q): %v, not EINVAL", s, err)
		}
	})
}

// FuzzStateWrite writes anything to a block's state and online files: a
// write is one of the kernel's words (then the block is in that state or
// the write failed with a hotplug errno) or EINVAL with nothing changed.
func FuzzStateWrite(f *testing.F) {
	for _, s := range []string{"online", "offline\n", "online_movable", "online_kernel\n", "garbage", "online\n\n", "1", "off"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data string, onlineFile bool) {
		e := newMemEnv(t)
		dir := memDir + "/memory" + itoa(e.offline)
		name := "state"
		if onlineFile {
			name = "online"
		}
		before := e.read(t, dir+"/state")
		err := e.node(t, dir+"/"+name).Write(context.Background(), data)
		after := e.read(t, dir+"/state")
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("%s <- %q: %v", name, data, err)
			}
			if after != before {
				t.Fatalf("%s <- %q failed (%v) but the state went %q -> %q", name, data, err, before, after)
			}
			return
		}
		if after != "online\n" && after != "offline\n" {
			t.Fatalf("%s <- %q: state %q", name, data, after)
		}
	})
}
