#!/usr/bin/env bash
# Leader takeover: two `ferry server`s on one PostgreSQL (started in a temp dir by the
# test, as ferry-app when run as root), one agent, a canary under load through the router;
# the leader is killed with -9 mid-canary. Runs the e2e test RUNS times and prints the
# time from the kill to the standby leading, and the failed requests at the router.
# Usage: bench/ha/takeover.sh [BUILD_DIR=build]   RUNS=5
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
RUNS="${RUNS:-5}"
ninja -C "$BUILD" -j2 ferry ferry-demo-app e2e_tests >/dev/null
export FERRY_BIN="$PWD/$BUILD/src/cli/ferry"
echo "| run | standby leads after kill -9 (ms) | failed requests / total |"
echo "| ---: | ---: | --- |"
for i in $(seq 1 "$RUNS"); do
  line=$("$BUILD/tests/e2e/e2e_tests" --gtest_filter='HaE2E.*' 2>&1 | grep '\[ measure \]' || true)
  ms=$(sed -n 's/.*standby leads \([0-9.]*\) ms.*/\1/p' <<<"$line")
  failed=$(sed -n 's/.*; \([0-9]*\) of \([0-9]*\) requests failed.*/\1 \/ \2/p' <<<"$line")
  echo "| $i | ${ms:-?} | ${failed:-test failed} |"
done
