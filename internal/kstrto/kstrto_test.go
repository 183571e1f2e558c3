package kstrto

import (
	"errors"
	"strconv"
	"syscall"
	"testing"
)

func TestUint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits int
		want uint64
		err  error
	}{
		{"0", 64, 0, nil},
		{"42", 64, 42, nil},
		{"0x1F", 64, 31, nil},
		{"0X1f", 64, 31, nil},
		{"017", 64, 15, nil},
		{"18446744073709551615", 64, 1<<64 - 1, nil},
		{"9223372036854775808", 63, 0, strconv.ErrRange},
		{"", 64, 0, syscall.EINVAL},
		{"0x", 64, 0, strconv.ErrSyntax}, // octal "x"
		{"1_000", 64, 0, syscall.EINVAL},
		{"+1", 64, 0, syscall.EINVAL},
		{"-1", 64, 0, syscall.EINVAL},
		{"0b101", 64, 0, strconv.ErrSyntax},
		{"0o17", 64, 0, strconv.ErrSyntax},
		{"08", 64, 0, strconv.ErrSyntax},
		{"12a", 64, 0, strconv.ErrSyntax},
	} {
		got, err := Uint(tc.in, tc.bits)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Uint(%q, %d) = %d, %v; want error %v", tc.in, tc.bits, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Uint(%q, %d) = %d, %v; want %d", tc.in, tc.bits, got, err, tc.want)
		}
	}
}

func TestSplitSuffix(t *testing.T) {
	for _, tc := range []struct {
		in, rest string
		mult     int64
	}{
		{"", "", 1}, {"12", "12", 1}, {"4k", "4", 1 << 10}, {"4K", "4", 1 << 10},
		{"2m", "2", 1 << 20}, {"1G", "1", 1 << 30}, {"3t", "3", 1 << 40},
		{"K", "", 1 << 10}, {"5P", "5P", 1}, {"0x10", "0x10", 1},
	} {
		if rest, mult := SplitSuffix(tc.in); rest != tc.rest || mult != tc.mult {
			t.Errorf("SplitSuffix(%q) = %q, %d; want %q, %d", tc.in, rest, mult, tc.rest, tc.mult)
		}
	}
}
