#!/bin/sh
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets and fuzz them for SECONDS in all
# (default 240), split evenly between the targets: one budget, however many targets there are.
#
#   make fuzz FUZZ_SECONDS=240       (the Makefile builds the targets, then calls this script)
#   FUZZ_TARGETS="isbn body" sh tests/fuzz/run.sh 10      only some targets
#   sh tests/fuzz/run.sh --tools     only install clang and its libFuzzer runtime if missing
#
# Targets (tests/fuzz/fuzz_NAME.c): isbn, extract, body, route. The Makefile builds them
# (`make fuzz-build`; FUZZ_SRC, FUZZ_CFLAGS): each with clang (-fsanitize=fuzzer,address,undefined)
# against the project sources it needs, compiled with -fsanitize=fuzzer-no-link,address,undefined
# and the project's warnings into build-fuzz/ (FUZZ_BUILD). A target first runs
# its committed seeds (tests/fuzz/seeds/NAME/) and regressions (tests/fuzz/regressions/NAME/);
# the extractor also reads every full page in $FIXTURES once. Then it fuzzes for SECONDS with a
# working corpus in build-fuzz/corpus/NAME/ (kept between runs). A crash, sanitizer report, leak,
# timeout (10 s per input), out-of-memory (2048 MB) or broken invariant fails the target; the
# input is saved as build-fuzz/artifacts/NAME/crash-* (copy it into tests/fuzz/regressions/NAME/
# once fixed: tests/unit/test_fuzz_regressions.c replays those in `make test`).
#
# Prints one line per target and "N passed, N failed"; exits non-zero when any target failed.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
OUT=${FUZZ_BUILD:-build-fuzz}
CLANG=${FUZZ_CC:-clang}
FIXTURES=${FIXTURES:-$ROOT/tests/fixtures}

# ---- tools (the Makefile runs this once per FUZZ_BUILD, through --tools) ------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
fuzzer_links() {
  mkdir -p "$OUT"
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
    'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    > "$OUT/probe.c"
  "$CLANG" -fsanitize=fuzzer,address,undefined -o "$OUT/probe" "$OUT/probe.c" >/dev/null 2>&1
}
if [ "${1:-}" = --tools ]; then
  if ! command -v "$CLANG" >/dev/null 2>&1 || ! fuzzer_links; then
    echo "fuzz: installing clang and its libFuzzer runtime" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends clang >/dev/null
    major=$("$CLANG" -dumpversion 2>/dev/null | cut -d. -f1)
    as_root apt-get install -y -qq --no-install-recommends "libclang-rt-$major-dev" >/dev/null 2>&1
    fuzzer_links || { echo "fuzz: $CLANG cannot link -fsanitize=fuzzer (need clang and libclang-rt-N-dev)" >&2; exit 2; }
  fi
  exit 0
fi

TOTAL=${1:-240}
case "$TOTAL" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] | --tools" >&2; exit 2 ;; esac
TARGETS=${FUZZ_TARGETS:-$(make -s --no-print-directory print-FUZZ_TARGETS)}
for t in $TARGETS; do
  [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz: no target tests/fuzz/fuzz_$t.c" >&2; exit 2; }
done
ntargets=$(echo $TARGETS | wc -w)
[ "$ntargets" -ge 1 ] || { echo "fuzz: no targets" >&2; exit 2; }
SECS=$((TOTAL / ntargets))
[ "$SECS" -ge 1 ] || SECS=1

# ---- build (already done when `make fuzz` calls this script) --------------------------------
if [ "${FUZZ_BUILT:-}" != 1 ]; then
  echo "fuzz: building into $OUT/ (make fuzz-build)"
  make -s --no-print-directory FUZZ_BUILD="$OUT" FUZZ_CC="$CLANG" FUZZ_TARGETS="$TARGETS" \
    fuzz-build || { echo "fuzz: building the targets failed" >&2; exit 2; }
fi

# ---- run --------------------------------------------------------------------------------------
max_len() {
  case "$1" in
    isbn) echo 256 ;;
    extract) echo 131072 ;;
    *) echo 4096 ;;
  esac
}
passed=0 failed=0 summary=""
for t in $TARGETS; do
  bin=$OUT/bin/fuzz_$t
  corpus=$OUT/corpus/$t
  art=$OUT/artifacts/$t
  log=$OUT/fuzz_$t.log
  rm -rf "$art"   # what an earlier run left there is in its log, or already a regression
  mkdir -p "$corpus" "$art"
  dirs="tests/fuzz/seeds/$t"
  [ -d "tests/fuzz/regressions/$t" ] && dirs="$dirs tests/fuzz/regressions/$t"
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  status=ok detail=""
  : > "$log"
  if [ "$t" = extract ] && [ -d "$FIXTURES" ]; then
    # Full pages, each once (as files, not corpus entries: mutating MB-sized inputs is slow).
    pages=$(find "$FIXTURES" -maxdepth 1 -name '*.html' | sort)
    if [ -n "$pages" ]; then
      # shellcheck disable=SC2086
      "$bin" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art/" $pages >> "$log" 2>&1 ||
        { status=FAILED; detail="on a fixture page"; }
    fi
  fi
  if [ "$status" = ok ]; then
    echo "fuzz: $t for ${SECS}s"
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
      -print_final_stats=1 -artifact_prefix="$art/" $dict "$corpus" $dirs >> "$log" 2>&1 ||
      status=FAILED
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  ncorp=$(find "$corpus" -type f | wc -l | tr -d ' ')
  if [ "$status" = ok ]; then
    passed=$((passed + 1))
    line=$(printf 'ok   %-8s %10s execs  %7s/s  corpus %s' "$t" "${runs:-?}" "${rate:-?}" "$ncorp")
  else
    failed=$((failed + 1))
    crash=$(ls -t "$art" 2>/dev/null | head -1)
    line=$(printf 'FAIL %-8s %s %s (log %s)' "$t" "${detail:-after ${runs:-?} execs}" \
      "${crash:+input $art/$crash}" "$log")
    echo "fuzz: $t FAILED; the end of its log:" >&2
    grep -n -m1 -e 'ERROR: ' -e 'invariant broken' -e 'runtime error' "$log" | sed 's/^/    /' >&2
    tail -25 "$log" | sed 's/^/    | /' >&2
  fi
  summary="$summary
$line"
done
echo "fuzz: results (${TOTAL}s in all, ${SECS}s per target)$summary"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
