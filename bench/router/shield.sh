#!/usr/bin/env bash
# Canary shield benchmark: ferry's router with a healthy stable release (v1) and a bad
# canary (v2, every answer 500) at CANARY_WEIGHT percent, loaded by wrk with GET requests,
# once with the shield on (the default) and once with it off. Reports the 5xx the clients
# saw and what the router counted against the canary (what the analysis reads).
# Usage: bench/router/shield.sh [BUILD_DIR=build-bench]
#   DURATION=5 THREADS=2 CONNS=32 CANARY_WEIGHT=10 BASE_PORT=18180
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build-bench}"
DURATION="${DURATION:-5}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
CANARY_WEIGHT="${CANARY_WEIGHT:-10}"
BASE_PORT="${BASE_PORT:-18180}"
STABLE_PORT=$BASE_PORT
BAD_PORT=$((BASE_PORT + 1))
ROUTER_PORT=$((BASE_PORT + 2))

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 2; }
if [ ! -x "$BUILD/bench/router/router_bench" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON >/dev/null
  ninja -C "$BUILD" router_bench >/dev/null
fi
BENCH_BIN="$BUILD/bench/router/router_bench"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

"$BENCH_BIN" backend "$STABLE_PORT" & pids+=($!)
"$BENCH_BIN" backend "$BAD_PORT" --status 500 & pids+=($!)
sleep 0.5

run() {  # label, extra router flags
  local label=$1
  shift
  "$BENCH_BIN" router "$ROUTER_PORT" "$STABLE_PORT" --canary "$BAD_PORT" \
    --canary-weight "$CANARY_WEIGHT" "$@" 2>"$tmp/router-$label.log" &
  local router_pid=$!
  sleep 0.5
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$ROUTER_PORT/")
  kill "$router_pid"
  wait "$router_pid" 2>/dev/null || true
  local total non2xx rps canary
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  canary=$(grep '^release v2 ' "$tmp/router-$label.log" | cut -d' ' -f3-)
  echo "| $label | $total | ${non2xx:-0} | $rps | $canary |"
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s GET /, canary v2 at $CANARY_WEIGHT% answering 500"
echo
echo "| shield | client requests | client-visible 5xx | requests/s | router counters for the canary |"
echo "| --- | --- | --- | --- | --- |"
run on
run off --no-shield
