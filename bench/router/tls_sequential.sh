#!/usr/bin/env bash
# One sequential TLS client (Python's ssl module: SNI, Nagle's algorithm on) against ferry's
# router, nginx and HAProxy with the same ECDSA P-256 certificate, each with one worker in
# front of the same backend (set up as in tls.sh). Per proxy and mode, COUNT connections
# one after another: the wall time, and the proxy's CPU per connection from /proc/PID/stat
# and, when perf is installed, from `perf stat -e task-clock,context-switches` (with the
# context switches per connection). Unlike tls.sh's two s_time clients, which keep a proxy
# busy, this shows what a slow, ordinary client costs and how long it waits: a proxy that
# sends nothing after the client's Finished leaves its ACK to the delayed-ACK timer, and
# a Nagle client's request waits for it (docs/BENCHMARKS.md, TLS, stop 21).
# Usage: bench/router/tls_sequential.sh [BUILD_DIR=build-bench]
#   COUNT=1000 ROUNDS=3 MODES="get handshake" FERRY_TICKETS=2 BASE_PORT=18180
#   PIN=0|1 (proxies on CPU 1, client and backend on CPU 0)  BENCH_BIN=path/to/router_bench
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT="${COUNT:-1000}"
MODES="${MODES:-get handshake}"
FERRY_TICKETS="${FERRY_TICKETS:-2}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
bench_packages nginx haproxy openssl python3 curl
bench_build

make_tls_cert
$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
$PROXY_CPU "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 \
  --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets "$FERRY_TICKETS" & pids+=($!); ferry_pid=$!
start_tls_peers "$NGINX_PORT" "$HAPROXY_PORT"
for name in ferry nginx haproxy; do
  port_var="${name^^}_PORT"
  wait_http "https://127.0.0.1:${!port_var}/" || exit 1
done

machine
echo "$(openssl version); $(nginx -v 2>&1 | cut -d' ' -f3); $(haproxy -v | head -1 | cut -d' ' -f1-3); $(python3 --version)"
echo "ferry sends $FERRY_TICKETS session tickets; $COUNT connections per run, one at a time; $ROUNDS rounds; pinned: ${PIN:-0}"
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    for name in ferry nginx haproxy; do
      port_var="${name^^}_PORT"
      pid_var="${name}_pid"
      pid=${!pid_var}
      # The process that serves (nginx's worker, not its master) for perf.
      served=$pid
      [ "$name" = nginx ] && served=$(pgrep -P "$nginx_pid" | head -n 1)
      perf_pid=""
      if command -v perf >/dev/null; then
        perf stat -e task-clock,context-switches -p "$served" -o "$tmp/perf" & perf_pid=$!
        sleep 0.2
      fi
      c0=$(cpu_seconds "$pid")
      t0=$(date +%s.%N)
      ok=$($LOAD_CPU python3 bench/router/tls_sequential_client.py "${!port_var}" "$COUNT" \
        "$tmp/cert.pem" "$mode")
      t1=$(date +%s.%N)
      c1=$(cpu_seconds "$pid")
      task_us="-" switches="-"
      if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        task_us=$(awk -v ok="$ok" '/task-clock/ {gsub(",", "", $1); printf "%.0f", $1 * 1000 / ok}' "$tmp/perf")
        switches=$(awk -v ok="$ok" '/context-switches/ {gsub(",", "", $1); printf "%.1f", $1 / ok}' "$tmp/perf")
      fi
      awk -v m="$mode" -v n="$name" -v r="$round" -v ok="$ok" -v a="$c0" -v b="$c1" \
        -v t0="$t0" -v t1="$t1" -v tk="$task_us" -v cs="$switches" -v l="$(load1)" \
        'BEGIN {printf "%s %s round=%s load=%s ok=%d wall_s=%.1f ms_per_conn=%.2f proc_us_per_conn=%.0f task_clock_us_per_conn=%s switches_per_conn=%s\n",
          m, n, r, l, ok, t1 - t0, (t1 - t0) * 1000 / ok, (b - a) * 1e6 / ok, tk, cs}'
    done
  done
done
