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
BUILD="${1:-build-bench}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-64}"
ROUNDS="${ROUNDS:-5}"
SLO_READ_MS="${SLO_READ_MS:-10}"
SLO_EXCLUDE="${SLO_EXCLUDE:-16}"
BASE_PORT="${BASE_PORT:-18180}"
BACKEND_PORT=$BASE_PORT
PLAIN_PORT=$((BASE_PORT + 1))
SLO_PORT=$((BASE_PORT + 2))
LOAD_CPU=""
PROXY_CPU=""
if [ "${PIN:-0}" = 1 ]; then
  LOAD_CPU="taskset -c 0"
  PROXY_CPU="taskset -c 1"
fi
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON >/dev/null
else
  cmake -S . -B "$BUILD" -DFERRY_BENCH=ON >/dev/null
fi
ninja -C "$BUILD" router_bench >/dev/null
BENCH_BIN="$BUILD/bench/router/router_bench"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
$PROXY_CPU "$BENCH_BIN" router "$PLAIN_PORT" "$BACKEND_PORT" --threads 1 2>"$tmp/plain.log" & pids+=($!); plain_pid=$!
$PROXY_CPU "$BENCH_BIN" router "$SLO_PORT" "$BACKEND_PORT" --threads 1 --slo-reads "$SLO_READ_MS" --slo-exclude "$SLO_EXCLUDE" 2>"$tmp/slo.log" & pids+=($!); slo_pid=$!
sleep 1

cpu_seconds() {  # user + system CPU seconds of a process (all its threads) so far
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}

run() {  # name port pid
  local name=$1 port=$2 pid=$3 out c0 c1 rps cpu per_cpu
  $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null  # warm-up
  c0=$(cpu_seconds "$pid")
  out=$($LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/")
  c1=$(cpu_seconds "$pid")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  per_cpu=$(awk -v r="$rps" -v d="$DURATION" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", r * d / c; else print "-"}')
  echo "$name round=$round load=$(cut -d' ' -f1 /proc/loadavg) rps=$rps router_cpu_s=$cpu req_per_cpu_s=$per_cpu"
  echo "$rps $per_cpu" >>"$tmp/results-$name"
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

median() {  # column N of a results file
  awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
echo
echo "| router | requests/s | requests per router CPU-second |"
echo "| --- | --- | --- |"
for name in no-slo slo; do
  echo "| $name | $(median "$tmp/results-$name" 1) | $(median "$tmp/results-$name" 2) |"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
