#!/usr/bin/env bash
# Two builds of ferry's router (router_bench A and B, e.g. before and after a change) under
# the same TLS load, taking turns round by round so that both see the same machine: each
# with one worker on the proxy CPU in front of one backend, the same ECDSA P-256
# certificate and two TLS 1.3 tickets per handshake. Modes, per round and build:
#   handshakes     two `openssl s_time -new` clients for DURATION s (handshake, close)
#   handshake_get  the same with `-www /` (a proxied GET after each handshake)
#   keepalive      wrk over HTTPS (THREADS, CONNS), keep-alive requests
# Prints each run (count, proxy CPU-s, per proxy CPU-second) and the medians, and the
# median of B's per-round ratio to A (the pairing cancels some of the machine's drift).
# Usage: A_BIN=path/to/router_bench B_BIN=path/to/router_bench bench/router/tls_ab.sh
#   ROUNDS=5 DURATION=8 MODES="handshakes handshake_get keepalive" PIN=1 BASE_PORT=18180
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${A_BIN:?A_BIN=path to one router_bench}" "${B_BIN:?B_BIN=path to the other}"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-8}"
MODES="${MODES:-handshakes handshake_get keepalive}"
BENCH_BIN="$B_BIN"
# shellcheck source=bench/router/common.sh
. bench/router/common.sh
bench_packages openssl wrk curl

make_tls_cert
$LOAD_CPU "$B_BIN" backend "$BACKEND_PORT" & pids+=($!)
declare -A port pid
for v in A B; do
  bin_var="${v}_BIN"
  [ "$v" = A ] && port[$v]=$((BASE_PORT + 1)) || port[$v]=$((BASE_PORT + 2))
  $PROXY_CPU "${!bin_var}" router "${port[$v]}" "$BACKEND_PORT" --threads 1 \
    --tls "$tmp/cert.pem" "$tmp/key.pem" --tls-tickets 2 & pids+=($!)
  pid[$v]=$!
done
for v in A B; do wait_http "https://127.0.0.1:${port[$v]}/" || exit 1; done
machine

# s_time_run V [-www /]: two clients for DURATION s; prints "connections cpu-seconds".
s_time_run() {
  local v=$1 c0 c1 n
  shift
  c0=$(cpu_seconds "${pid[$v]}")
  for k in 1 2; do
    $LOAD_CPU openssl s_time -connect "127.0.0.1:${port[$v]}" -new "$@" -time "$DURATION" \
      >"$tmp/s_time.$k" 2>&1 &
  done
  wait %?s_time 2>/dev/null || true
  wait "$(jobs -p | tail -1)" 2>/dev/null || true
  sleep 0.2
  c1=$(cpu_seconds "${pid[$v]}")
  n=$(grep -h "connections in .*s;" "$tmp/s_time.1" "$tmp/s_time.2" | awk '{s += $1} END {print s + 0}')
  echo "$n $(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')"
}

: >"$tmp/runs"
for mode in $MODES; do
  for r in $(seq "$ROUNDS"); do
    for v in A B; do
      case $mode in
        handshakes) read -r n cpu < <(s_time_run "$v") ;;
        handshake_get) read -r n cpu < <(s_time_run "$v" -www /) ;;
        keepalive)
          wrk_measure "${pid[$v]}" "https://127.0.0.1:${port[$v]}/"
          n=$(awk -v r="$WRK_RPS" -v d="$DURATION" 'BEGIN {printf "%.0f", r * d}')
          cpu=$WRK_CPU ;;
        *) echo "unknown mode $mode" >&2; exit 2 ;;
      esac
      per=$(per_cpu_second "$n" "$cpu")
      echo "$mode $v round=$r load=$(load1) count=$n proxy_cpu_s=$cpu per_cpu_s=$per"
      echo "$mode $v $r $per" >>"$tmp/runs"
    done
  done
done

echo
echo "| mode | A per proxy CPU-s | B per proxy CPU-s | B / A, median of rounds |"
echo "| --- | --- | --- | --- |"
for mode in $MODES; do
  awk -v m="$mode" '$1 == m && $2 == "A" {print $4}' "$tmp/runs" >"$tmp/a"
  awk -v m="$mode" '$1 == m && $2 == "B" {print $4}' "$tmp/runs" >"$tmp/b"
  paste "$tmp/a" "$tmp/b" | awk '{printf "%.3f\n", $2 / $1}' >"$tmp/ratio"
  echo "| $mode | $(median "$tmp/a" 1) | $(median "$tmp/b" 1) | $(median "$tmp/ratio" 1) |"
done
