#!/usr/bin/env bash
# Store benchmark: deployments (20 events and their audit entries each) per second on
# SQLite and on a PostgreSQL 15 that store_bench starts in a temp dir (as ferry-app when
# run as root) and stops by PID. Prints a markdown table.
# Usage: bench/store/run.sh [BUILD_DIR=build-bench]   DEPLOYMENTS=200 THREADS="1 4"
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build-bench}"
DEPLOYMENTS="${DEPLOYMENTS:-200}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON >/dev/null
fi
ninja -C "$BUILD" -j2 store_bench >/dev/null
first=1
for t in ${THREADS:-1 4}; do
  if [ $first = 1 ]; then
    "$BUILD/bench/store/store_bench" --deployments "$DEPLOYMENTS" --threads "$t"
    first=0
  else
    "$BUILD/bench/store/store_bench" --deployments "$DEPLOYMENTS" --threads "$t" | tail -n +3
  fi
done
