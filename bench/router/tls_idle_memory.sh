#!/usr/bin/env bash
# Memory a TLS proxy holds per idle keep-alive connection: ferry's router, nginx and
# HAProxy (one worker each, the same ECDSA P-256 certificate, set up as in tls.sh) each
# get COUNT connections that hand-shake, ask one GET and then sit idle
# (bench/router/tls_idle_client.py); the growth of the proxy's resident memory divided by
# COUNT. A_BIN (optional): a second router_bench measured the same way, e.g. the build
# before a change.
# Usage: bench/router/tls_idle_memory.sh [BUILD_DIR=build-bench]
#   COUNT=2000 BASE_PORT=18180 BENCH_BIN=path/to/router_bench A_BIN=path/to/router_bench
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT="${COUNT:-2000}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
bench_packages nginx haproxy openssl python3 curl
bench_build
# Each proxy holds a descriptor per client and HAProxy wants two per connection of its
# maxconn (4000, common.sh) at start: the limit is raised when lower, never lowered.
need=$((COUNT * 2 + 1000 > 10000 ? COUNT * 2 + 1000 : 10000))
if [ "$(ulimit -n)" -lt "$need" ] && ! ulimit -n "$need" 2>/dev/null; then
  echo "open files limit $(ulimit -n) is below $need (COUNT=$COUNT)" >&2
  exit 1
fi

make_tls_cert
"$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
start_tls_peers $((BASE_PORT + 2)) $((BASE_PORT + 3))
machine

measure() {  # name pid port
  wait_http "https://127.0.0.1:$3/" || exit 1
  read -r n before after per < <(python3 bench/router/tls_idle_client.py "$3" "$COUNT" "$2")
  echo "| $1 | $n | $before | $after | $per |"
}
ferry_router() {  # BIN PORT: starts it, sets router_pid
  "$1" router "$2" "$BACKEND_PORT" --threads 1 --tls "$tmp/cert.pem" "$tmp/key.pem" & pids+=($!)
  router_pid=$!
}
echo "| proxy | idle connections | RSS before, KiB | after, KiB | KiB per connection |"
echo "| --- | --- | --- | --- | --- |"
if [ -n "${A_BIN:-}" ]; then
  ferry_router "$A_BIN" $((BASE_PORT + 4))
  measure "ferry (A_BIN)" "$router_pid" $((BASE_PORT + 4))
fi
ferry_router "$BENCH_BIN" $((BASE_PORT + 1))
measure ferry "$router_pid" $((BASE_PORT + 1))
# nginx's worker is the master's child.
measure nginx "$(pgrep -P "$nginx_pid" | head -1)" $((BASE_PORT + 2))
measure haproxy "$haproxy_pid" $((BASE_PORT + 3))
