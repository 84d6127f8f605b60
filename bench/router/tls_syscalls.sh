#!/usr/bin/env bash
# System calls per TLS connection of ferry's router and of nginx (set up as in tls.sh):
# `strace -c -f` attached to each proxy while one `openssl s_time -new` client runs for
# DURATION seconds, each count divided by the connections s_time made. strace slows the
# proxy, so only the counts per connection mean anything, not the rates.
# Usage: bench/router/tls_syscalls.sh [BUILD_DIR=build-bench]
#   DURATION=4 WWW=/ (s_time -www: a GET after each handshake; empty: handshake only)
#   FERRY_TICKETS=2 BASE_PORT=18180 BENCH_BIN=path/to/router_bench
set -euo pipefail
cd "$(dirname "$0")/../.."
FERRY_TICKETS="${FERRY_TICKETS:-2}"
WWW="${WWW-/}"
DURATION="${DURATION:-4}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
bench_packages nginx haproxy openssl strace curl
bench_build

make_tls_cert
"$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
"$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 \
  --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets "$FERRY_TICKETS" & pids+=($!); ferry_pid=$!
start_tls_peers "$NGINX_PORT" "$HAPROXY_PORT"
for port in "$FERRY_PORT" "$NGINX_PORT"; do wait_http "https://127.0.0.1:$port/" || exit 1; done

echo "s_time -new${WWW:+ -www $WWW} for ${DURATION}s under strace -c -f; ferry sends $FERRY_TICKETS tickets"
for name in ferry nginx; do
  port_var="${name^^}_PORT"
  pid=$ferry_pid
  [ "$name" = nginx ] && pid=$(pgrep -P "$nginx_pid" | head -n 1)  # the worker
  strace -c -f -p "$pid" -o "$tmp/strace-$name" & strace_pid=$!
  sleep 0.5
  openssl s_time -connect "127.0.0.1:${!port_var}" -new -time "$DURATION" \
    -CAfile "$tmp/cert.pem" ${WWW:+-www "$WWW"} >"$tmp/stime-$name" 2>&1 || true
  kill -INT "$strace_pid"
  wait "$strace_pid" || true
  n=$(awk '/connections in [0-9.]+s;/ {print $1; exit}' "$tmp/stime-$name")
  [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "$name: s_time made no connection" >&2; cat "$tmp/stime-$name" >&2; exit 1; }
  echo "== $name: $n connections; system calls per connection"
  # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
  awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $NF != "total" && $4 ~ /^[0-9]+$/ {printf "  %-18s %6.2f\n", $NF, $4 / n; t += $4}
    END {printf "  %-18s %6.2f\n", "(all)", t / n}' "$tmp/strace-$name" | sort -k2 -g -r
done
