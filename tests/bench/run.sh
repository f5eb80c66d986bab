#!/bin/sh
# tests/bench/run.sh - `make bench`: installs what the benchmarks use, builds their tools into
# $BUILD/bench/ (`make bench-build`) and runs tests/bench/bench.py (see BENCHMARKS.md).
#
#   sh tests/bench/run.sh [SECTION...]     refresh extract api store memory (default: all)
#   BUILD=dir BENCH_RUNS=3 BENCH_WRK_SECONDS=5 sh tests/bench/run.sh
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench
sh .ci/deps bench
# The binary, the fixture store and the bench tools, with the Makefile's sources and flags.
make -s BUILD="$BUILD" bench-build
exec python3 tests/bench/bench.py --build "$BUILD" --out "$OUT" "$@"
