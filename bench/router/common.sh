# Set-up shared by the router benchmarks (bench/router/*.sh): sourced, not run, as
# `. bench/router/common.sh "$@"` from the repository root. Settings a script does not
# set before sourcing get these defaults:
#   BUILD=$1 or build-bench  DURATION=10  THREADS=2  CONNS=64  ROUNDS=3  BASE_PORT=18180
#   BACKEND_PORT=BASE_PORT
# After sourcing:
#   LOAD_CPU / PROXY_CPU   taskset prefixes (PIN=1: proxies on CPU 1, load and backend on
#                          CPU 0; else empty)
#   bench_packages P...    installs the Debian packages P that are missing
#   bench_build            a Release router_bench in $BUILD (unless BENCH_BIN is set);
#                          sets BENCH_BIN
#   tmp, pids              a scratch directory and the PIDs to stop on exit (append with
#                          `pids+=($!)`); both are cleaned up by an EXIT trap
#   cpu_seconds PID        user + system CPU seconds of PID and its children so far
#   load1                  the 1-minute load average now
#   machine                one line: CPUs, model, load averages
#   per_cpu_second N CPU   N divided by CPU seconds, rounded ("-" for no CPU)
#   median FILE COL        the median of column COL of FILE
#   wait_http URL          waits (up to 20 s) until curl -k gets a 2xx from URL
#   start_peers ...        nginx and HAProxy in front of the backend (see below)
#   make_tls_cert          an ECDSA P-256 certificate for bench.test: $tmp/cert.pem and
#                          key.pem, and both in $tmp/haproxy.pem
#   start_tls_peers N H [LINES]  start_peers terminating TLS as the TLS benchmarks compare
#                          them (see below)
#   wrk_measure PID URL    wrk's requests/s and requests per CPU-second of PID (see below)

BUILD="${1:-build-bench}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-64}"
ROUNDS="${ROUNDS:-3}"
BASE_PORT="${BASE_PORT:-18180}"
BACKEND_PORT=$BASE_PORT
LOAD_CPU=""
PROXY_CPU=""
if [ "${PIN:-0}" = 1 ]; then
  LOAD_CPU="taskset -c 0"
  PROXY_CPU="taskset -c 1"
fi

bench_packages() {  # peers and load generators come from Debian, like everything else
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" != 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

bench_build() {  # BENCH_BIN: a router_bench already built (e.g. RelWithDebInfo) instead
  [ -n "${BENCH_BIN:-}" ] && return 0
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON >/dev/null
  else
    cmake -S . -B "$BUILD" -DFERRY_BENCH=ON >/dev/null
  fi
  ninja -C "$BUILD" router_bench >/dev/null
  BENCH_BIN="$BUILD/bench/router/router_bench"
}

tmp=$(mktemp -d)
pids=()
bench_cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap bench_cleanup EXIT

cpu_seconds() {
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    if [ -r "/proc/$pid/stat" ]; then
      # Fields 14 and 15 counted from the end of "(comm)", which may hold spaces.
      total=$(sed 's/^.*) //' "/proc/$pid/stat" | awk -v t="$total" '{print t + $12 + $13}')
    fi
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

load1() { cut -d' ' -f1 /proc/loadavg; }

machine() {
  echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
}

per_cpu_second() {
  awk -v n="$1" -v c="$2" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print "-"}'
}

median() {
  awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}

wait_http() {
  local _
  for _ in $(seq 100); do curl -sfk -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "no answer from $1" >&2
  return 1
}

# nginx and HAProxy, one worker each on PROXY_CPU, proxying to 127.0.0.1:$BACKEND_PORT over
# pooled keep-alive connections with X-Forwarded-For, as ferry's router does. Sets
# nginx_pid and haproxy_pid. Arguments:
#   1 nginx listen (e.g. "127.0.0.1:18082" or "127.0.0.1:18082 ssl http2")
#   2 HAProxy bind (e.g. "127.0.0.1:18083" or "... ssl crt FILE alpn h2,http/1.1")
#   3 more nginx server lines (given: TLS, and X-Forwarded-Proto https is set),
#   4 more HAProxy global lines, 5 more HAProxy frontend lines
# nginx closes a keep-alive connection after 1,000 requests by default (ferry and HAProxy
# do not): raised, so no peer pays for new connections the others do not make.
start_peers() {
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
    listen $1;
    keepalive_requests 1000000;
${3:-}
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
${3:+      proxy_set_header X-Forwarded-Proto https;}
    }
  }
}
EOF
  cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
${4:-}
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend f
  bind $2
${5:-}
  default_backend b
backend b
  server s1 127.0.0.1:$BACKEND_PORT
EOF
  $PROXY_CPU nginx -e "$tmp/nginx-error.log" -p "$tmp" -c "$tmp/nginx.conf" & pids+=($!)
  nginx_pid=$!
  $PROXY_CPU haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" & pids+=($!)
  haproxy_pid=$!
}

make_tls_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"
}

# start_tls_peers NGINX_PORT HAPROXY_PORT [MORE_NGINX_LINES]: nginx and HAProxy on
# 127.0.0.1 terminating TLS with make_tls_cert's certificate as every TLS benchmark compares
# them with ferry: TLS 1.2 and 1.3 both offered (Debian's nginx 1.22 offers 1.3 only when
# told: docs/BENCHMARKS.md, stop 22), ALPN h2 and http/1.1, X-Forwarded-Proto https.
start_tls_peers() {
  start_peers "127.0.0.1:$1 ssl http2" \
    "127.0.0.1:$2 ssl crt $tmp/haproxy.pem alpn h2,http/1.1" \
    "    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;${3:+
$3}" \
    "  ssl-default-bind-options ssl-min-ver TLSv1.2" \
    "  http-request set-header X-Forwarded-Proto https"
}

# wrk_measure PID URL [WRK_OPTION...]: a 2 s warm-up, then wrk -t$THREADS -c$CONNS for
# DURATION s with the options; sets WRK_OUT (wrk's report), WRK_RPS (requests/s), WRK_CPU
# (CPU seconds PID and its children used meanwhile), WRK_PER_CPU (requests per such
# CPU-second) and WRK_ERRORS (wrk's non-2xx and socket error lines, one line).
wrk_measure() {
  local pid=$1 url=$2 c0 c1
  shift 2
  $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d2s "$url" >/dev/null
  c0=$(cpu_seconds "$pid")
  WRK_OUT=$($LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$@" "$url")
  c1=$(cpu_seconds "$pid")
  WRK_RPS=$(awk '/^Requests\/sec/ {print $2}' <<<"$WRK_OUT")
  WRK_CPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
  WRK_PER_CPU=$(per_cpu_second "$(awk -v r="$WRK_RPS" -v d="$DURATION" 'BEGIN {print r * d}')" "$WRK_CPU")
  WRK_ERRORS=$(awk '/Non-2xx|Socket errors/' <<<"$WRK_OUT" | tr '\n' ' ')
}
