#!/usr/bin/env bash
# What counting for SLOs costs the router per request (docs/slo.md, docs/BENCHMARKS.md):
# two ferry routers (router_bench router, one io thread each) over the same keep-alive
# backend, one as every router runs (no SLO), the other with a reader taking its counters
# and computing what is new since the last read every SLO_READ_MS ms (the SLO collector of
# server/slo_service.h does it every 10 s: the default here is a thousand times as often).
# wrk loads each in turn, alternating which goes first; the figure is requests per CPU-second
# of the router process (from /proc/PID/stat) and requests/s, medians over the rounds.
# The SLO router also leaves SLO_EXCLUDE paths out of its SLO counter set (exclude_paths;
# prefixes no request matches, so each request is compared with all of them: 16 is the most
# ferry.yaml allows; 0 measures the reader alone).
# Usage: bench/router/slo.sh [BUILD_DIR=build-bench]
#   DURATION=10 THREADS=2 CONNS=64 ROUNDS=5 SLO_READ_MS=10 SLO_EXCLUDE=16 BASE_PORT=18180 PIN=1
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-5}"
SLO_READ_MS="${SLO_READ_MS:-10}"
SLO_EXCLUDE="${SLO_EXCLUDE:-16}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
PLAIN_PORT=$((BASE_PORT + 1))
SLO_PORT=$((BASE_PORT + 2))
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
bench_build

$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
$PROXY_CPU "$BENCH_BIN" router "$PLAIN_PORT" "$BACKEND_PORT" --threads 1 2>"$tmp/plain.log" & pids+=($!); plain_pid=$!
$PROXY_CPU "$BENCH_BIN" router "$SLO_PORT" "$BACKEND_PORT" --threads 1 --slo-reads "$SLO_READ_MS" --slo-exclude "$SLO_EXCLUDE" 2>"$tmp/slo.log" & pids+=($!); slo_pid=$!
sleep 1

run() {  # name port pid
  local name=$1 port=$2 pid=$3
  wrk_measure "$pid" "http://127.0.0.1:$port/"
  echo "$name round=$round load=$(load1) rps=$WRK_RPS router_cpu_s=$WRK_CPU req_per_cpu_s=$WRK_PER_CPU"
  echo "$WRK_RPS $WRK_PER_CPU" >>"$tmp/results-$name"
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, SLO reads every ${SLO_READ_MS} ms, ${SLO_EXCLUDE} excluded paths, pinned: ${PIN:-0}"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    run no-slo "$PLAIN_PORT" "$plain_pid"
    run slo "$SLO_PORT" "$slo_pid"
  else
    run slo "$SLO_PORT" "$slo_pid"
    run no-slo "$PLAIN_PORT" "$plain_pid"
  fi
done
kill "$slo_pid" "$plain_pid"
wait "$slo_pid" "$plain_pid" 2>/dev/null || true
echo "SLO reader: $(grep -o 'slo reads=[0-9]* counted=[0-9]*' "$tmp/slo.log" || echo 'no report')"

echo
echo "| router | requests/s | requests per router CPU-second |"
echo "| --- | --- | --- |"
for name in no-slo slo; do
  echo "| $name | $(median "$tmp/results-$name" 1) | $(median "$tmp/results-$name" 2) |"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
