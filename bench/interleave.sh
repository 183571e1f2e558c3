#!/bin/sh
# interleave.sh: run the Go benchmark rows of package bench and the C
# malloc harness alternately, N rounds, and print per row the median ns/op
# and the ratios to reference rows (medians of per-round ratios), headed by
# the CPU model, Go version and date. See bench/cmd/interleave (go doc
# ./bench/cmd/interleave) for the flags.
#
# Usage: bench/interleave.sh [-rounds 9] [-benchtime 1s] [-bench RE] [-cbench LIST] [-c LIST] [-v]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
exec go run ./cmd/interleave -dir "$here" "$@"
