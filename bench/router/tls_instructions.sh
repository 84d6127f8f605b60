#!/usr/bin/env bash
# Instructions per TLS connection, counted by valgrind (callgrind), for ferry's router,
# nginx and HAProxy set up as in tls.sh (one worker each, the same ECDSA P-256
# certificate, two TLS 1.3 tickets per handshake). Unlike CPU time on a shared VM (±10-25%
# from run to run), an instruction count is the same every run: it tells which proxy's own
# work costs more, though not what the kernel spends for it (see tls_syscalls.sh for
# that). Each proxy runs twice under callgrind, serving N1 and then N2 sequential
# connections of tls_instructions_client.py; (instructions of run 2 - run 1) / (N2 - N1)
# leaves out start-up and shut-down. Per mode: all user-space instructions of the proxy's
# processes, and of them the ones inside SSL_do_handshake (OpenSSL's handshake).
# A_BIN (optional): a second router_bench, e.g. the build before a change, counted too.
# Usage: bench/router/tls_instructions.sh [BUILD_DIR=build-bench]
#   N1=40 N2=240 MODES="handshake get" BASE_PORT=18180 BENCH_BIN=path/to/router_bench
set -euo pipefail
cd "$(dirname "$0")/../.."
N1="${N1:-40}"
N2="${N2:-240}"
MODES="${MODES:-handshake get}"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh "$@"
bench_packages nginx haproxy openssl python3 curl valgrind
bench_build

make_tls_cert
"$BENCH_BIN" backend "$BACKEND_PORT" & pids+=($!)
machine

FERRY_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
A_PORT=$((BASE_PORT + 4))
# One run: every proxy under callgrind (forked children too: nginx's worker), COUNT
# connections each in MODE, then a graceful stop so that callgrind writes its counts.
# Prints "name instructions handshake_instructions" per proxy.
run() {
  local count=$1 mode=$2 dir="$tmp/run-$1-$2" name pid
  mkdir -p "$dir"
  # nginx's worker (its master runs as root) writes its counts as nobody.
  chmod o+x "$tmp"
  chmod 1777 "$dir"
  local cg="valgrind --tool=callgrind --callgrind-out-file=$dir/cg.%p --log-file=$dir/vg.%p"
  local -A port=([ferry]=$FERRY_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT)
  local -A ppid
  PROXY_CPU="$cg" start_tls_peers "$NGINX_PORT" "$HAPROXY_PORT"
  ppid[nginx]=$nginx_pid
  ppid[haproxy]=$haproxy_pid
  $cg "$BENCH_BIN" router "$FERRY_PORT" "$BACKEND_PORT" --threads 1 \
    --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets 2 >/dev/null & ppid[ferry]=$!
  if [ -n "${A_BIN:-}" ]; then
    $cg "$A_BIN" router "$A_PORT" "$BACKEND_PORT" --threads 1 \
      --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets 2 >/dev/null & ppid[ferry_a]=$!
    port[ferry_a]=$A_PORT
  fi
  for name in "${!port[@]}"; do
    local up=0
    for _ in $(seq 150); do
      if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" \
        "${port[$name]}" 2>/dev/null; then up=1; break; fi
      sleep 0.2
    done
    [ "$up" = 1 ] || { echo "$name did not come up under valgrind" >&2; exit 1; }
    python3 bench/router/tls_instructions_client.py "${port[$name]}" "$count" "$mode"
  done
  kill -INT "${ppid[ferry]}"
  [ -n "${ppid[ferry_a]:-}" ] && kill -INT "${ppid[ferry_a]}"
  kill -QUIT "${ppid[nginx]}"
  kill -USR1 "${ppid[haproxy]}"
  for pid in "${ppid[@]}"; do wait "$pid" 2>/dev/null || true; done
  # nginx's worker is not our child: wait until every process under valgrind has written
  # its counts (its log ends with "Collected").
  for _ in $(seq 100); do
    local f open=0
    for f in "$dir"/vg.*; do grep -q "Collected :" "$f" || open=1; done
    [ "$open" = 0 ] && break
    sleep 0.2
  done
  for name in "${!port[@]}"; do
    local pat
    case $name in ferry) pat="router $FERRY_PORT " ;; ferry_a) pat="router $A_PORT " ;; *) pat="$name" ;; esac
    local total=0 hs=0 f pidof
    for f in "$dir"/vg.*; do
      grep -q "^==[0-9]*== Command: .*$pat" "$f" || continue
      local collected
      collected=$(awk '/Collected :/ {n = $NF} END {print n}' "$f")
      total=$((total + ${collected:-0}))
      pidof=${f##*.}
      [ -f "$dir/cg.$pidof" ] || continue
      local in_hs
      in_hs=$(callgrind_annotate --inclusive=yes --threshold=100 "$dir/cg.$pidof" 2>/dev/null |
        awk '/\?\?\?:SSL_do_handshake \[/ && !n++ {gsub(",", "", $1); print $1}')
      hs=$((hs + ${in_hs:-0}))
    done
    echo "$name $total $hs"
  done
}

echo "| mode | proxy | instructions per connection | of them in SSL_do_handshake | the rest |"
echo "| --- | --- | --- | --- | --- |"
for mode in $MODES; do
  run "$N1" "$mode" >"$tmp/r1"
  run "$N2" "$mode" >"$tmp/r2"
  join <(sort "$tmp/r1") <(sort "$tmp/r2") | sort |
    awk -v n=$((N2 - N1)) -v m="$mode" '{t = ($4 - $2) / n; h = ($5 - $3) / n;
      printf "| %s | %s | %.0f | %.0f | %.0f |\n", m, $1, t, h, t - h}'
done
