#!/usr/bin/env bash
# Router benchmark: ferry's router, nginx and haproxy, each with one worker, proxying to the
# same tiny keep-alive backend (router_bench backend), loaded by wrk in turn.
# Usage: bench/router/run.sh [BUILD_DIR=build-bench]
#   DURATION=10 THREADS=2 CONNS=64 ROUNDS=3  wrk settings and how many rounds per proxy
#   BASE_PORT=18080                           backend, ferry, nginx, haproxy on +0..+3
#   PIN=1                                     proxies on CPU 1, backend and wrk on CPU 0
# Prints one line per run and a summary table (median over rounds, with the median 1-minute
# load average at the end of the runs) in markdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE_PORT="${BASE_PORT:-18080}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
bench_packages wrk nginx haproxy
bench_build

$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!); backend_pid=$!
$PROXY_CPU "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 & pids+=($!); ferry_pid=$!
start_peers "127.0.0.1:$NGINX_PORT" "127.0.0.1:$HAPROXY_PORT"
for port in $FERRY_PORT $NGINX_PORT $HAPROXY_PORT; do wait_http "http://127.0.0.1:$port/"; done

to_ms() {  # wrk prints 512.00us, 1.20ms or 1.01s
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else print v }'
}

run() {  # name port pid
  local name=$1 port=$2 pid=$3 p50 p99
  wrk_measure "$pid" "http://127.0.0.1:$port/" --latency
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$WRK_OUT")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$WRK_OUT")")
  echo "$name round=$round load=$(load1) rps=$WRK_RPS p50_ms=$p50 p99_ms=$p99 proxy_cpu_s=$WRK_CPU req_per_cpu_s=$WRK_PER_CPU ${WRK_ERRORS:+errors: $WRK_ERRORS}"
  echo "$WRK_RPS $p50 $p99 $WRK_PER_CPU $(load1)" >>"$tmp/results-$name"
}

machine
echo "$(nginx -v 2>&1 | cut -d' ' -f3), $(haproxy -v | head -1 | cut -d' ' -f1-3), wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, pinned: ${PIN:-0}"
for round in $(seq "$ROUNDS"); do
  run direct "$BACKEND_PORT" "$backend_pid"
  run ferry "$FERRY_PORT" "$ferry_pid"
  run nginx "$NGINX_PORT" "$nginx_pid"
  run haproxy "$HAPROXY_PORT" "$haproxy_pid"
done

echo
echo "| target | requests/s | p50 ms | p99 ms | requests per proxy CPU-second | load (1 min) |"
echo "| --- | --- | --- | --- | --- | --- |"
for name in direct ferry nginx haproxy; do
  f="$tmp/results-$name"
  per_cpu=$(median "$f" 4)
  [ "$name" = direct ] && per_cpu="-"
  echo "| $name | $(median "$f" 1) | $(median "$f" 2) | $(median "$f" 3) | $per_cpu | $(median "$f" 5) |"
done
