#!/usr/bin/env bash
# TLS benchmark: ferry's router, nginx and HAProxy terminating TLS with the same ECDSA P-256
# certificate, each with one worker, in front of the same tiny keep-alive backend.
#   1. full handshakes: `openssl s_time -new` clients (no resumption), two in parallel for
#      DURATION seconds: handshakes per second and per proxy CPU-second. Two kinds:
#      `handshakes`: the client hand-shakes and closes (a health check, a scanner, a
#      flood); `handshake_get`: after each handshake the client sends `GET / HTTP/1.0`
#      and reads the answer (proxied to the backend), the cost of a client that came to ask;
#   2. keep-alive HTTPS requests (HTTP/1.1): wrk over TLS: requests per second and per
#      proxy CPU-second;
#   3. HTTP/2: h2load (H2_CLIENTS connections, H2_STREAMS streams each) for DURATION
#      seconds: requests per second and per proxy CPU-second.
# Like for like: the same OpenSSL library for all (Debian's), TLS 1.2-1.3 allowed and the
# clients' defaults negotiate TLS 1.3 with TLS_AES_256_GCM_SHA384 over X25519 everywhere
# (the script prints what each peer negotiated), and the same number of TLS 1.3 session
# tickets after each full handshake: nginx and HAProxy send OpenSSL's two (measured:
# stateless with tickets on, stateful with `ssl_session_tickets off` / `no-tls-tickets`,
# two either way), so ferry is told to send two as well (its default is one); the script
# counts the tickets each peer sends. FERRY_TICKETS=1 measures ferry as it ships.
# Usage: bench/router/tls.sh [BUILD_DIR=build-bench]
#   DURATION=10 ROUNDS=3 CONNS=64 H2_CLIENTS=16 H2_STREAMS=10 FERRY_TICKETS=2 BASE_PORT=18180
#   PIN=0|1 (proxies on CPU 1, load on CPU 0)  BENCH_BIN=path/to/router_bench (no build)
#   ONLY="handshakes handshake_get keepalive h2" (which parts to run)
# Prints one line per run and a summary table (median over rounds) in markdown, each
# figure with the median 1-minute load average at the end of its runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
H2_CLIENTS="${H2_CLIENTS:-16}"
H2_STREAMS="${H2_STREAMS:-10}"
FERRY_TICKETS="${FERRY_TICKETS:-2}"
ONLY="${ONLY:-handshakes handshake_get keepalive h2}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
bench_packages wrk nginx haproxy openssl nghttp2-client curl
bench_build

# One certificate for all three: ECDSA P-256, what ACME issues by default.
make_tls_cert

$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
# ferry's router offers h2 by ALPN by default (tls.http2) and 100 streams per connection.
$PROXY_CPU "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 \
  --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets "$FERRY_TICKETS" & pids+=($!); ferry_pid=$!
# The same TLS settings in each: protocols, certificate; HTTP/2 by ALPN with 100
# streams per connection (ferry's tls.http2_max_streams default; HAProxy's default too).
start_tls_peers "$NGINX_PORT" "$HAPROXY_PORT" "    http2_max_concurrent_streams 100;"

# Each answers over HTTPS, and what each negotiates with a default client: protocol,
# cipher, key exchange group, ALPN, and how many session tickets it sends.
negotiated() {  # port
  local out
  out=$(printf 'GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n' |
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername bench.test -alpn h2,http/1.1 \
      -CAfile "$tmp/cert.pem" -msg -ign_eof 2>&1 | tr -d '\0' || true)
  printf '%s, group %s, ALPN %s, %s session tickets' \
    "$(awk '/^New, / {print $2, $5; exit}' <<<"$out" | tr -d ,)" \
    "$(awk -F': ' '/^Server Temp Key/ {print $2; exit}' <<<"$out")" \
    "$(awk -F': ' '/^ALPN protocol/ {print $2; exit}' <<<"$out")" \
    "$(grep -c '<<< .*NewSessionTicket' <<<"$out" || true)"
}
for name in ferry nginx haproxy; do
  port_var="${name^^}_PORT"
  wait_http "https://127.0.0.1:${!port_var}/" || {
    cat "$tmp/haproxy.log" "$tmp/nginx-error.log" >&2 2>/dev/null
    exit 1
  }
  echo "$name: $(negotiated "${!port_var}")"
done

handshakes() {  # name port pid [www]: two s_time clients for DURATION s
  local name=$1 port=$2 pid=$3 www=${4:-} c0 c1 n cpu kind=handshakes file=hs
  [ -n "$www" ] && kind=handshake_get file=hg
  c0=$(cpu_seconds "$pid")
  for i in 1 2; do
    $LOAD_CPU openssl s_time -connect "127.0.0.1:$port" -new -time "$DURATION" \
      -CAfile "$tmp/cert.pem" ${www:+-www "$www"} >"$tmp/stime-$i" 2>&1 &
  done
  wait %?s_time 2>/dev/null || true
  while pgrep -f "s_time -connect 127.0.0.1:$port" >/dev/null; do sleep 0.2; done
  c1=$(cpu_seconds "$pid")
  n=$(awk '/connections in [0-9.]+s;/ {s += $1} END {print s + 0}' "$tmp/stime-1" "$tmp/stime-2")
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  local per_s per_cpu
  per_s=$(awk -v n="$n" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}')
  per_cpu=$(per_cpu_second "$n" "$cpu")
  echo "$kind $name round=$round load=$(load1) handshakes=$n per_s=$per_s proxy_cpu_s=$cpu per_cpu_s=$per_cpu"
  # A run without a single handshake (s_time failed) is reported, not counted in the medians.
  [ "$n" -gt 0 ] && echo "$per_s $per_cpu $(load1)" >>"$tmp/$file-$name"
  [ "$n" -gt 0 ] || { echo "$kind $name round=$round: s_time made none:" >&2; cat "$tmp/stime-1" >&2; }
}

handshake_get() {  # name port pid
  handshakes "$1" "$2" "$3" /
}

keepalive() {  # name port pid
  local name=$1 port=$2 pid=$3
  wrk_measure "$pid" "https://127.0.0.1:$port/"
  echo "keepalive $name round=$round load=$(load1) rps=$WRK_RPS proxy_cpu_s=$WRK_CPU req_per_cpu_s=$WRK_PER_CPU $WRK_ERRORS"
  echo "$WRK_RPS $WRK_PER_CPU $(load1)" >>"$tmp/ka-$name"
}

h2() {  # name port pid: h2load for DURATION s after a 1 s warm-up
  local name=$1 port=$2 pid=$3 out c0 c1 done_n rps cpu per_cpu
  c0=$(cpu_seconds "$pid")
  out=$($LOAD_CPU h2load -c"$H2_CLIENTS" -m"$H2_STREAMS" -t1 --warm-up-time=1 -D"$DURATION" \
    "https://127.0.0.1:$port/" 2>&1)
  c1=$(cpu_seconds "$pid")
  grep -q "Application protocol: h2" <<<"$out" || { echo "h2 $name: not HTTP/2" >&2; echo "$out" >&2; return 1; }
  # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
  done_n=$(awk '/^requests:/ {print $8}' <<<"$out")
  rps=$(awk -v n="$done_n" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}')
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  per_cpu=$(per_cpu_second "$done_n" "$cpu")
  echo "h2 $name round=$round load=$(load1) $(awk '/^requests:/' <<<"$out") rps=$rps proxy_cpu_s=$cpu req_per_cpu_s=$per_cpu"
  echo "$rps $per_cpu $(load1)" >>"$tmp/h2-$name"
}

machine
echo "$(openssl version); $(nginx -v 2>&1 | cut -d' ' -f3); $(haproxy -v | head -1 | cut -d' ' -f1-3); $(h2load --version | head -1)"
echo "ferry sends $FERRY_TICKETS session tickets; s_time x2 for ${DURATION}s; wrk -t$THREADS -c$CONNS -d${DURATION}s; h2load -c$H2_CLIENTS -m$H2_STREAMS -D$DURATION; $ROUNDS rounds; pinned: ${PIN:-0}"
for round in $(seq "$ROUNDS"); do
  for part in $ONLY; do
    case "$part" in
      handshakes) f=handshakes ;;
      handshake_get) f=handshake_get ;;
      keepalive) f=keepalive ;;
      h2) f=h2 ;;
      *) echo "unknown part $part" >&2; exit 2 ;;
    esac
    $f ferry "$FERRY_PORT" "$ferry_pid"
    $f nginx "$NGINX_PORT" "$nginx_pid"
    $f haproxy "$HAPROXY_PORT" "$haproxy_pid"
  done
done

cell() {  # file column: the median, or "-" when that part did not run
  [ -f "$1" ] && median "$1" "$2" || echo "-"
}
echo
echo "| target | handshakes/s | handshakes per proxy CPU-second | load | handshake + GET /s | per proxy CPU-second | load | keep-alive HTTPS requests/s | per proxy CPU-second | load | HTTP/2 requests/s | per proxy CPU-second | load |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for name in ferry nginx haproxy; do
  row="| $name"
  for kind in hs hg ka h2; do
    row+=" | $(cell "$tmp/$kind-$name" 1) | $(cell "$tmp/$kind-$name" 2) | $(cell "$tmp/$kind-$name" 3)"
  done
  echo "$row |"
done
