#!/bin/sh
# Runs every test program and counts their TAP-style lines ("ok - ..." / "not ok - ...").
#   tests/run.sh [FILTER...]   only tests whose name contains one of the filters
# Unit tests: $BUILD/tests/test_* (from tests/unit); integration tests: tests/integration/*.py
# (they start the real binary and the fixture store on ephemeral loopback ports; helpers in
# tests/lib); the browser test: tests/browser/*.mjs. Ends with "N passed, N failed".
set -u
BUILD=${BUILD:-build}
export BUILD
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) BDIR=$BUILD ;; *) BDIR=$ROOT/$BUILD ;; esac
export BOOKRANK_BIN=${BOOKRANK_BIN:-$BDIR/bookrank}
export FIXTURE_STORE_BIN=${FIXTURE_STORE_BIN:-$BDIR/tests/fixture_store}
export FIXTURES=${FIXTURES:-$ROOT/tests/fixtures}
export FIXTURES
# Integration tests import their helpers from tests/lib.
export PYTHONPATH="$ROOT/tests/lib${PYTHONPATH:+:$PYTHONPATH}"
LOGDIR=$BDIR/test-logs
mkdir -p "$LOGDIR"
passed=0 failed=0 broken=""

FILTERS="$*"
selected() {
  [ -z "$FILTERS" ] && return 0
  for f in $FILTERS; do case "$1" in *"$f"*) return 0 ;; esac; done
  return 1
}

run_one() {  # name, command...
  name=$1; shift
  log=$LOGDIR/$name.log
  start=$(date +%s)
  "$@" > "$log" 2>&1
  rc=$?
  p=$(grep -c '^ok ' "$log")
  f=$(grep -c '^not ok ' "$log")
  if grep -q -e 'ERROR: AddressSanitizer' -e 'WARNING: ThreadSanitizer' -e 'runtime error:' \
       -e 'ERROR: LeakSanitizer' "$log" && ! grep -q '^not ok - sanitizer' "$log"; then
    f=$((f + 1)); echo "not ok - $name: sanitizer report" >> "$log"
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; echo "not ok - $name exited with status $rc" >> "$log"
  fi
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-28s %4d passed %3d failed  %3ss\n' "$name" "$p" "$f" "$(( $(date +%s) - start ))"
  if [ "$f" -ne 0 ]; then
    broken="$broken $name"
    grep -A3 '^not ok ' "$log" | head -40 | sed 's/^/    /'
    tail -5 "$log" | sed 's/^/    | /'
  fi
}

for t in "$BDIR"/tests/test_*; do
  [ -x "$t" ] || continue
  n=$(basename "$t")
  selected "$n" && run_one "$n" "$t"
done
for t in "$ROOT"/tests/integration/test_*.py; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .py)
  selected "$n" && run_one "$n" python3 "$t"
done
for t in "$ROOT"/tests/browser/test_*.mjs; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .mjs)
  selected "$n" && run_one "$n" node "$t"
done
[ -n "$broken" ] && echo "failing:$broken (logs in $LOGDIR)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
