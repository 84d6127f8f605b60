#!/usr/bin/env bash
# Router benchmark: ferry's router, nginx and haproxy, each with one worker, proxying to the
# same tiny keep-alive backend (router_bench backend), loaded by wrk in turn.
# Usage: bench/router/run.sh [BUILD_DIR=build-bench]
#   DURATION=10 THREADS=2 CONNS=64 ROUNDS=3  wrk settings and how many rounds per proxy
#   BASE_PORT=18080                           backend, ferry, nginx, haproxy on +0..+3
#   PIN=1                                     proxies on CPU 1, backend and wrk on CPU 0
# Prints one line per run and a summary table (median over rounds) in markdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build-bench}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-64}"
ROUNDS="${ROUNDS:-3}"
BASE_PORT="${BASE_PORT:-18080}"
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

# Peers and load generator come from Debian, like everything else.
missing=()
for p in wrk nginx haproxy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON >/dev/null
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
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend f
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend b
backend b
  server s1 127.0.0.1:$BACKEND_PORT
EOF

$LOAD_CPU "$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!); backend_pid=$!
$PROXY_CPU "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 & pids+=($!); ferry_pid=$!
$PROXY_CPU nginx -e "$tmp/nginx-error.log" -p "$tmp" -c "$tmp/nginx.conf" & pids+=($!); nginx_pid=$!
$PROXY_CPU haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" & pids+=($!); haproxy_pid=$!
sleep 1

# CPU seconds (user + system) a process and its children used so far.
cpu_seconds() {
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    if [ -r "/proc/$pid/stat" ]; then
      total=$(awk -v t="$total" '{print t + $14 + $15}' "/proc/$pid/stat")
    fi
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

to_ms() {  # wrk prints 512.00us, 1.20ms or 1.01s
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else print v }'
}

run() {  # name port pid
  local name=$1 port=$2 pid=$3 out c0 c1
  $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null  # warm-up
  c0=$(cpu_seconds "$pid")
  out=$($LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
  c1=$(cpu_seconds "$pid")
  local rps p50 p99 errors cpu per_cpu
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx/ {print $NF} /Socket errors/ {print $0}' <<<"$out" | tr '\n' ' ')
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  per_cpu=$(awk -v r="$rps" -v d="$DURATION" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", r * d / c; else print "-"}')
  echo "$name round=$round load=$(cut -d' ' -f1 /proc/loadavg) rps=$rps p50_ms=$p50 p99_ms=$p99 proxy_cpu_s=$cpu req_per_cpu_s=$per_cpu ${errors:+errors: $errors}"
  echo "$rps $p50 $p99 $per_cpu" >>"$tmp/results-$name"
}

echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, pinned: ${PIN:-0}"
for round in $(seq "$ROUNDS"); do
  run direct "$BACKEND_PORT" "$backend_pid"
  run ferry "$FERRY_PORT" "$ferry_pid"
  run nginx "$NGINX_PORT" "$nginx_pid"
  run haproxy "$HAPROXY_PORT" "$haproxy_pid"
done

median() {  # column N of a results file
  awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
echo
echo "| target | requests/s | p50 ms | p99 ms | requests per proxy CPU-second |"
echo "| --- | --- | --- | --- | --- |"
for name in direct ferry nginx haproxy; do
  f="$tmp/results-$name"
  per_cpu=$(median "$f" 4)
  [ "$name" = direct ] && per_cpu="-"
  echo "| $name | $(median "$f" 1) | $(median "$f" 2) | $(median "$f" 3) | $per_cpu |"
done
