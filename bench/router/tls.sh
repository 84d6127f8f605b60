#!/usr/bin/env bash
# TLS benchmark: ferry's router, nginx and HAProxy terminating TLS with the same ECDSA P-256
# certificate, each with one worker, in front of the same tiny keep-alive backend.
#   1. full handshakes: `openssl s_time -new` clients (TLS 1.3, X25519, no resumption), two
#      in parallel for DURATION seconds: handshakes per second and per proxy CPU-second;
#   2. keep-alive HTTPS requests: wrk over TLS: requests per second and per proxy CPU-second.
# Usage: bench/router/tls.sh [BUILD_DIR=build-bench]
#   DURATION=10 ROUNDS=3 CONNS=64 BASE_PORT=18180 PIN=0|1 (proxies on CPU 1, load on CPU 0)
#   BENCH_BIN=path/to/router_bench (skip the Release build)
# Prints one line per run and summary tables (median over rounds) in markdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build-bench}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNS="${CONNS:-64}"
BASE_PORT="${BASE_PORT:-18180}"
BACKEND_PORT=$BASE_PORT
FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
LOAD_CPU=""
PROXY_CPU=""
if [ "${PIN:-0}" = 1 ]; then
  LOAD_CPU="taskset -c 0"
  PROXY_CPU="taskset -c 1"
fi

missing=()
for p in wrk nginx haproxy openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# BENCH_BIN: a router_bench already built (e.g. in a RelWithDebInfo tree) instead.
if [ -z "${BENCH_BIN:-}" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON >/dev/null
  ninja -C "$BUILD" router_bench >/dev/null
  BENCH_BIN="$BUILD/bench/router/router_bench"
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# One certificate for all three: ECDSA P-256, what ACME issues by default.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"

cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
EOF
cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend f
  bind 127.0.0.1:$HAPROXY_PORT ssl crt $tmp/haproxy.pem
  http-request set-header X-Forwarded-Proto https
  default_backend b
backend b
  server s1 127.0.0.1:$BACKEND_PORT
EOF

$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
$PROXY_CPU "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 \
  --tls "$tmp/cert.pem" "$tmp/key.pem" & pids+=($!); ferry_pid=$!
$PROXY_CPU nginx -e "$tmp/nginx-error.log" -p "$tmp" -c "$tmp/nginx.conf" & pids+=($!); nginx_pid=$!
$PROXY_CPU haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" & pids+=($!); haproxy_pid=$!
sleep 1

cpu_seconds() {  # user + system CPU of a process and its children so far
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    if [ -r "/proc/$pid/stat" ]; then
      total=$(awk -v t="$total" '{print t + $14 + $15}' "/proc/$pid/stat")
    fi
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

handshakes() {  # name port pid: two s_time clients for DURATION s
  local name=$1 port=$2 pid=$3 c0 c1 n cpu
  c0=$(cpu_seconds "$pid")
  for i in 1 2; do
    $LOAD_CPU openssl s_time -connect "127.0.0.1:$port" -new -time "$DURATION" \
      -CAfile "$tmp/cert.pem" >"$tmp/stime-$i" 2>&1 &
  done
  wait %?s_time 2>/dev/null || true
  while pgrep -f "s_time -connect 127.0.0.1:$port" >/dev/null; do sleep 0.2; done
  c1=$(cpu_seconds "$pid")
  n=$(awk '/connections in [0-9.]+s;/ {s += $1} END {print s + 0}' "$tmp/stime-1" "$tmp/stime-2")
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  local per_s per_cpu
  per_s=$(awk -v n="$n" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}')
  per_cpu=$(awk -v n="$n" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print "-"}')
  echo "handshakes $name round=$round load=$(cut -d' ' -f1 /proc/loadavg) handshakes=$n per_s=$per_s proxy_cpu_s=$cpu per_cpu_s=$per_cpu"
  echo "$per_s $per_cpu" >>"$tmp/hs-$name"
}

keepalive() {  # name port pid
  local name=$1 port=$2 pid=$3 out c0 c1 rps cpu per_cpu
  $LOAD_CPU wrk -t2 -c"$CONNS" -d2s "https://127.0.0.1:$port/" >/dev/null  # warm-up
  c0=$(cpu_seconds "$pid")
  out=$($LOAD_CPU wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "https://127.0.0.1:$port/")
  c1=$(cpu_seconds "$pid")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  per_cpu=$(awk -v r="$rps" -v d="$DURATION" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", r * d / c; else print "-"}')
  echo "keepalive $name round=$round load=$(cut -d' ' -f1 /proc/loadavg) rps=$rps proxy_cpu_s=$cpu req_per_cpu_s=$per_cpu $(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')"
  echo "$rps $per_cpu" >>"$tmp/ka-$name"
}

# A request through each, checked, before measuring.
for port in $FERRY_PORT $NGINX_PORT $HAPROXY_PORT; do
  for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
  curl -sfk "https://127.0.0.1:$port/" >/dev/null || {
    echo "no HTTPS answer on $port" >&2
    cat "$tmp/haproxy.log" "$tmp/nginx-error.log" >&2 2>/dev/null
    exit 1
  }
done

echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(openssl version); s_time x2 for ${DURATION}s; wrk -t2 -c$CONNS -d${DURATION}s; $ROUNDS rounds; pinned: ${PIN:-0}"
for round in $(seq "$ROUNDS"); do
  handshakes ferry "$FERRY_PORT" "$ferry_pid"
  handshakes nginx "$NGINX_PORT" "$nginx_pid"
  handshakes haproxy "$HAPROXY_PORT" "$haproxy_pid"
  keepalive ferry "$FERRY_PORT" "$ferry_pid"
  keepalive nginx "$NGINX_PORT" "$nginx_pid"
  keepalive haproxy "$HAPROXY_PORT" "$haproxy_pid"
done

median() {  # column N of a results file
  awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
echo
echo "| target | handshakes/s | handshakes per proxy CPU-second | keep-alive HTTPS requests/s | requests per proxy CPU-second |"
echo "| --- | --- | --- | --- | --- |"
for name in ferry nginx haproxy; do
  echo "| $name | $(median "$tmp/hs-$name" 1) | $(median "$tmp/hs-$name" 2) | $(median "$tmp/ka-$name" 1) | $(median "$tmp/ka-$name" 2) |"
done
