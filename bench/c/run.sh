#!/bin/sh
# run.sh: build bench/c/malloc_bench.c against glibc, jemalloc and mimalloc
# and run each. Installs libjemalloc-dev / libmimalloc-dev with apt-get if
# they are missing (needs root and network; set NO_INSTALL=1 to skip the
# allocators that are not installed instead).
#
# Usage: bench/c/run.sh [malloc_bench args, e.g. -n 20000000 -t 2 -r 5]
# Env:   CC (default gcc), CFLAGS (default -O2), NO_INSTALL=1
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
src="$here/malloc_bench.c"
CC=${CC:-gcc}
CFLAGS=${CFLAGS:--O2}
mkdir -p "$build"

have_pkg() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_pkg() {
	have_pkg "$1" && return 0
	if [ "${NO_INSTALL:-0}" = 1 ]; then
		echo "run.sh: $1 not installed (NO_INSTALL=1), skipping" >&2
		return 1
	fi
	echo "run.sh: installing $1" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; then
		$sudo apt-get update -qq >/dev/null &&
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
	fi || { echo "run.sh: cannot install $1, skipping" >&2; return 1; }
}

# build NAME DEFINE LIB
build() {
	# shellcheck disable=SC2086 # CFLAGS and $2/$3 are word lists
	$CC $CFLAGS -Wall -pthread $2 "$src" -o "$build/malloc_bench_$1" $3
}

# run NAME ARGS...
run() {
	name=$1
	shift
	bin="$build/malloc_bench_$name"
	# Show which allocator library the binary is linked against.
	lib=$(ldd "$bin" | awk -v n="$name" '$1 ~ n {print $1 " => " $3}')
	[ -n "$lib" ] && echo "c/$name linked: $lib"
	"$bin" "$@"
}

targets="glibc"
build glibc "" ""
if ensure_pkg libjemalloc-dev; then
	build jemalloc -DUSE_JEMALLOC -ljemalloc && targets="$targets jemalloc"
fi
if ensure_pkg libmimalloc-dev; then
	build mimalloc -DUSE_MIMALLOC -lmimalloc && targets="$targets mimalloc"
fi

echo "# $(uname -m) $(nproc) CPUs; $CC $CFLAGS; args: $*"
for t in $targets; do
	run "$t" "$@"
done
