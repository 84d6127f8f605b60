#!/usr/bin/env bash
# Installs what the tests need, builds ferry from nothing and runs every test:
# the unit and e2e tests (ctest), then the unit tests again under ASan+UBSan,
# then each libFuzzer target for a short bounded run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
JOBS="${JOBS:-2}"

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$JOBS"
echo "== tests"
(cd build && ctest --output-on-failure -j"$JOBS" --timeout 300)

if [ "${FERRY_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== unit tests under AddressSanitizer + UBSan"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON >/dev/null
  ninja -C build-asan -j"$JOBS"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$JOBS" --timeout 300 -LE e2e)
fi

if [ "${FERRY_SKIP_FUZZ:-0}" != 1 ] && [ -f fuzz/CMakeLists.txt ]; then
  echo "== fuzz targets (bounded runs)"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFERRY_FUZZ=ON >/dev/null
  ninja -C build-fuzz -j"$JOBS" fuzzers
  for f in build-fuzz/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="fuzz/corpus/${name#fuzz_}"
    mkdir -p "build-fuzz/corpus-$name"
    echo "-- $name"
    "$f" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=2048 "build-fuzz/corpus-$name" \
      $( [ -d "$corpus" ] && echo "$corpus" ) 2>&1 | tail -n 2
  done
fi
echo "== all tests passed"
