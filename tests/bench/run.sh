#!/bin/sh
# tests/bench/run.sh - `make bench`: installs what the benchmarks use, builds their tools into
# $BUILD/bench/ and runs tests/bench/bench.py (see BENCHMARKS.md).
#
#   sh tests/bench/run.sh [SECTION...]     refresh extract api store memory (default: all)
#   BUILD=dir BENCH_RUNS=3 BENCH_WRK_SECONDS=5 sh tests/bench/run.sh
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench
sh .ci/deps bench
make -s BUILD="$BUILD" "$BUILD/bookrank" "$BUILD/tests/fixture_store"
mkdir -p "$OUT"
PKGS="libmicrohttpd libcurl libpcre2-8 sqlite3 jansson"
CFLAGS="-O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -I. $(pkg-config --cflags $PKGS)"
LIBS="$BUILD/libbookrank.a $(pkg-config --libs $PKGS) -lm -pthread"
for tool in extract_bench store_bench; do
    # shellcheck disable=SC2086
    ${CC:-cc} $CFLAGS -o "$OUT/$tool" "tests/bench/$tool.c" $LIBS
done
# shellcheck disable=SC2086
${CC:-cc} $CFLAGS -pthread -o "$OUT/bare_mhd" tests/bench/bare_mhd.c $(pkg-config --libs libmicrohttpd)
exec python3 tests/bench/bench.py --build "$BUILD" --out "$OUT" "$@"
