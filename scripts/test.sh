#!/usr/bin/env bash
# Installs what the tests need, builds ferry once from nothing and runs every test on that
# build. The one build (build-ci/) is clang-16 with AddressSanitizer + UBSan, libFuzzer's
# coverage instrumentation and -Wthread-safety, compiled as unity batches and linked with
# mold, so that it serves every stage:
#   1. ctest: the unit tests, the end-to-end tests (real ferry binaries, Prometheus,
#      headless Chromium) and the checks of deploy/, all under the sanitizers;
#   2. each libFuzzer target for a fixed number of inputs (FUZZ_RUNS_<target>), started
#      niced when the tests start: the ctest entries wait on servers and timers much of the
#      time, and the fuzzers take the cores they leave idle; the stage then waits for the
#      fuzzers (each also bounded by FUZZ_MAX_SECONDS, default 600: a safety bound, not the plan).
# Every stage prints its time, and a table of them closes the run (docs/architecture.md,
# "CI"). FERRY_SKIP_FUZZ=1 skips stage 2. BUILD_DIR, JOBS (compile jobs, default 2) and
# TEST_JOBS (ctest entries at once, default twice JOBS: most entries wait on servers and
# timers, not on a core) may be set. The executables are linked without PIE: a sanitized
# ferry then starts with ~30% less CPU (no relocation of its 27 MB of data), and the
# tests start ferry and the demo app a few thousand times.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# One cache for every checkout: paths below the parent folder are hashed relative to it.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$(pwd)")}" CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-10G}"
JOBS="${JOBS:-2}"
TEST_JOBS="${TEST_JOBS:-$((JOBS * 2))}"
BUILD="${BUILD_DIR:-build-ci}"

stages=()
stage_start=$SECONDS
stage() {  # stage NAME: closes the stage before (if any) and opens NAME
  if [ -n "${stage_name:-}" ]; then
    stages+=("$(printf '%-34s %4ds' "$stage_name" $((SECONDS - stage_start)))")
  fi
  stage_name="$1"
  stage_start=$SECONDS
  [ -n "$1" ] && echo "== $1"
  return 0
}
report() {
  local rc=$?
  for p in "${fuzz_pids[@]}"; do kill "${p%%:*}" 2>/dev/null || true; done  # after a failure
  stage ""
  echo "== stage times (exit $rc)"
  printf '  %s\n' "${stages[@]}"
  printf '  %-34s %4ds\n' "total" "$SECONDS"
}
fuzz_pids=()
trap report EXIT

stage "install packages"
scripts/install-deps.sh --test

stage "build (clang-16, ASan+UBSan, fuzz)"
# Unity batches of 16 files: each batch compiles the Asio/Beast templates it uses once, and
# at -O0 with the sanitizers that code generation is most of the build (agent, router and
# server libraries from nothing: 204 s at batches of 8, 167 s at 16, 173 s at 32 on two cores).
CC=clang-16 CXX=clang++-16 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_C_FLAGS_DEBUG=-O0 -g1" "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" \
  -DCMAKE_EXE_LINKER_FLAGS=-no-pie \
  -DFERRY_FUZZ=ON -DFERRY_CTEST_PER_SUITE=ON -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
ninja -C "$BUILD" -j"$JOBS" all fuzzers
ccache -s 2>/dev/null | grep -E 'Hits|Misses' | head -n 2 || true

stage "tests (sanitized; fuzzers niced beside)"
# Leak checks stay on; a sanitizer report fails the test that caused it. Freed memory waits
# in a 64 MB quarantine (ASan's default on small machines; 256 MB here by default) before it
# is handed out again, and new blocks are not pre-filled with 0xbe: both made every process
# touch fresh pages, and page faults were ~40% of the stage's CPU on the CI machine. The
# programs the tests start (ferry, the demo app) also run without stack-use-after-return
# checks (src/cli/sanitizer_defaults.cpp); the test binaries keep them.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:quarantine_size_mb=64:max_malloc_fill_size=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# clang-16's runtime does not find Debian's llvm-symbolizer by itself: without this a report
# names addresses, not functions and lines.
sym=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
[ -n "$sym" ] && export ASAN_SYMBOLIZER_PATH="$sym" UBSAN_SYMBOLIZER_PATH="$sym"
# The fuzz targets, each for a fixed number of inputs (about what 20 s gave each on a free
# core of this project's 2-core VM), at the lowest priority: they use what the tests leave.
FUZZ_RUNS_fuzz_config="${FUZZ_RUNS_fuzz_config:-1200}"
FUZZ_RUNS_fuzz_router_request="${FUZZ_RUNS_fuzz_router_request:-40000}"
FUZZ_RUNS_fuzz_rules="${FUZZ_RUNS_fuzz_rules:-12000}"
if [ "${FERRY_SKIP_FUZZ:-0}" != 1 ]; then
  for f in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    runs_var="FUZZ_RUNS_$name"
    corpus="fuzz/corpus/${name#fuzz_}"
    # Artifacts (a crash, a leak, or an input slower than 10 s: niced beside the tests, one
    # can be) go to the build dir, never to the checkout.
    mkdir -p "$BUILD/corpus-$name" "$BUILD/artifacts-$name"
    nice -n 19 "$f" -runs="${!runs_var:-10000}" -max_total_time="${FUZZ_MAX_SECONDS:-600}" \
      -rss_limit_mb=2048 -artifact_prefix="$BUILD/artifacts-$name/" "$BUILD/corpus-$name" $([ -d "$corpus" ] && echo "$corpus") \
      >"$BUILD/$name.log" 2>&1 &
    fuzz_pids+=("$!:$name")
  done
fi
# A fresh build dir has no timings of earlier runs, and ctest would start the entries in the
# order they are declared, the longest e2e suites among the last; tests/ctest_costs.txt
# (each entry's time in a CI run, in seconds) makes it start the longest first. An entry
# missing there starts after them; ctest replaces the copy with its own timings.
mkdir -p "$BUILD/Testing/Temporary"
[ -s "$BUILD/Testing/Temporary/CTestCostData.txt" ] ||
  cp tests/ctest_costs.txt "$BUILD/Testing/Temporary/CTestCostData.txt"
# An entry that fails is run once more, alone in its slot: a failure both times fails the
# stage; one that passed the second time is named below as flaky (a bug to chase, not noise).
(cd "$BUILD" && ctest --output-on-failure -j"$TEST_JOBS" --timeout 300 --repeat until-pass:2) |
  tee "$BUILD/ctest.log"
flaky=$(grep -E 'Test +#[0-9]+: .*\*\*\*(Failed|Timeout|Exception)' "$BUILD/ctest.log" |
  sed -E 's/.*Test +#[0-9]+: ([^ ]+) .*/\1/' | sort -u || true)
if [ -n "$flaky" ]; then
  echo "== flaky: failed once, passed when run again:"
  printf '  %s\n' $flaky
fi

if [ "${#fuzz_pids[@]}" -gt 0 ]; then
  stage "fuzz targets (rest of their inputs)"
  # Each writes its own log; a crash (or a leak, a timeout of one input) fails the stage.
  fuzz_failed=0
  for p in "${fuzz_pids[@]}"; do
    name=${p#*:}
    if wait "${p%%:*}"; then
      echo "-- $name: $(tail -n 1 "$BUILD/$name.log")"
    else
      echo "-- $name FAILED:"
      tail -n 40 "$BUILD/$name.log"
      fuzz_failed=1
    fi
  done
  fuzz_pids=()  # waited for: their PIDs may belong to other processes from now on
  [ "$fuzz_failed" = 0 ]
fi
stage ""
echo "== all tests passed"
