#!/usr/bin/env bash
# Full TLS handshakes, ferry's router against nginx, in pairs whose order alternates
# (ferry-nginx, nginx-ferry, ...) so that neither always runs first: per run two
# `openssl s_time -new` clients for DURATION s (each proxy with one worker, set up as in
# tls.sh, two TLS 1.3 tickets per handshake) and `perf stat` of the proxy over the middle
# of it: proxy CPU microseconds (task-clock), context switches and page faults per
# connection. Prints every run, the medians, and the median of the per-pair ratio
# ferry / nginx of CPU per connection (below 1: ferry spends less).
# Usage: bench/router/tls_paired.sh [BUILD_DIR=build-bench]
#   PAIRS=8 DURATION=8 WWW= (or / for a GET after each handshake) BASE_PORT=18180
#   BENCH_BIN=path/to/router_bench   (the proxies run on CPU 1, the clients on CPU 0)
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS="${PAIRS:-8}"
DURATION="${DURATION:-8}"
WWW="${WWW-}"
PIN=1
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
bench_packages nginx haproxy openssl curl linux-perf
bench_build

make_tls_cert
$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
$PROXY_CPU "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 \
  --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets 2 & pids+=($!)
ferry_pid=$!
start_tls_peers "$NGINX_PORT" $((BASE_PORT + 3))
for port in "$FERRY_PORT" "$NGINX_PORT"; do wait_http "https://127.0.0.1:$port/" || exit 1; done
nginx_worker=$(pgrep -P "$nginx_pid" | head -1)
machine
echo "s_time -new${WWW:+ -www $WWW} x2 for ${DURATION}s per run; $PAIRS pairs"

# measure NAME PID PORT: one run; appends "NAME us_per_conn cs_per_conn faults_per_conn".
measure() {
  local s1 s2 n window
  $LOAD_CPU openssl s_time -connect "127.0.0.1:$3" -new ${WWW:+-www "$WWW"} -time "$DURATION" \
    >"$tmp/st.1" 2>&1 & s1=$!
  $LOAD_CPU openssl s_time -connect "127.0.0.1:$3" -new ${WWW:+-www "$WWW"} -time "$DURATION" \
    >"$tmp/st.2" 2>&1 & s2=$!
  window=$((DURATION - 2))
  sleep 0.5
  perf stat -x, -e task-clock,context-switches,page-faults -p "$2" -- sleep "$window" \
    2>"$tmp/perf.txt" >/dev/null
  wait "$s1" "$s2"
  # Connections made in the perf window: s_time's count scaled to the window.
  n=$(grep -h "connections in .*s;" "$tmp/st.1" "$tmp/st.2" |
    awk -v w="$window" -v d="$DURATION" '{s += $1} END {print s * w / d}')
  awk -F, -v n="$n" -v name="$1" '
    $3 == "task-clock" {t = $1} $3 == "context-switches" {c = $1} $3 == "page-faults" {f = $1}
    END {printf "%s %.1f %.2f %.2f\n", name, t * 1000 / n, c / n, f / n}' "$tmp/perf.txt" |
    tee -a "$tmp/runs"
}
: >"$tmp/runs"
for p in $(seq "$PAIRS"); do
  if [ $((p % 2)) = 1 ]; then
    measure ferry "$ferry_pid" "$FERRY_PORT"; measure nginx "$nginx_worker" "$NGINX_PORT"
  else
    measure nginx "$nginx_worker" "$NGINX_PORT"; measure ferry "$ferry_pid" "$FERRY_PORT"
  fi
done
awk '$1 == "ferry" {print $2}' "$tmp/runs" >"$tmp/f"
awk '$1 == "nginx" {print $2}' "$tmp/runs" >"$tmp/n"
paste "$tmp/f" "$tmp/n" | awk '{printf "%.3f\n", $1 / $2}' >"$tmp/ratio"
echo "| proxy CPU µs per connection, median of $PAIRS | ferry | nginx | ferry / nginx, median of pairs |"
echo "| --- | --- | --- | --- |"
echo "| s_time -new${WWW:+ -www $WWW} | $(median "$tmp/f" 1) | $(median "$tmp/n" 1) | $(median "$tmp/ratio" 1) |"
