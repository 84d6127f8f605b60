#!/usr/bin/env bash
# Agent restart under load: a real `ferry agent` runs one app (two instances of the demo
# app, examples/demo-app) behind its router; wrk loads the router with keep-alive GETs while
# the agent is restarted, and the script reports what the clients saw.
#   planned: SIGHUP, the agent hands its sockets to its next process (docs/agent.md)
#   crash:   kill -9 of the agent process (DATA_DIR/agent.pid); its keeper (the process the
#            loop below started, src/agent/keeper.h) holds the listening sockets and
#            forks the next agent process at once; with KEEPER=0 (`--no-keeper`, or a
#            ferry from before the keeper) the agent is one process and the supervising
#            loop starts it again (as systemd with Restart=always, RestartSec=0 would).
#            Also the time until the router answers 200 again, probed in a loop (bash's
#            /dev/tcp), and what the next agent process logged of its start (CPU ms, ms
#            from its start until its routers served); after the rounds, the median and
#            maximum of the crashes' times and their refused reconnects.
# Usage: bench/router/restart.sh [BUILD_DIR=build]
#   DURATION=8 THREADS=2 CONNS=32 BASE_PORT=18280 ROUNDS=3 KEEPER=1 CRASH_ONLY=0
#   STABLE_S=11: the agent process is at least this old when killed (the keeper's crash-loop
#   backoff starts for a process younger than 10 s; STABLE_S=0 measures that backoff)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
DURATION="${DURATION:-8}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
BASE_PORT="${BASE_PORT:-18280}"
ROUNDS="${ROUNDS:-3}"
KEEPER="${KEEPER:-1}"
CRASH_ONLY="${CRASH_ONLY:-0}"
STABLE_S="${STABLE_S:-11}"
AGENT_PORT=$BASE_PORT
ROUTER_PORT=$((BASE_PORT + 1))

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 2; }
command -v curl >/dev/null || { echo "curl is needed"; exit 2; }
if [ ! -x "$BUILD/examples/demo-app/ferry-demo-app" ] || [ ! -x "$BUILD/src/cli/ferry" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" ferry ferry-demo-app >/dev/null
fi
DEMO="$(realpath "$BUILD/examples/demo-app/ferry-demo-app")"
FERRY="$(realpath "$BUILD/src/cli/ferry")"

tmp=$(mktemp -d)
loop_pid=""
cleanup() {
  touch "$tmp/stop"
  [ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null || true
  [ -f "$tmp/agent/agent.pid" ] && kill "$(cat "$tmp/agent/agent.pid")" 2>/dev/null || true
  sleep 0.5
  # The instances run in their own sessions: stop the ones the state file names.
  for pid in $(grep -o '"pid":[0-9]*' "$tmp/agent/agent-state.json" 2>/dev/null | cut -d: -f2); do
    [ "$pid" -gt 1 ] && kill -- "-$pid" 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] && { echo "kept $tmp"; return; }
  rm -rf "$tmp"
}
trap cleanup EXIT

head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"
chmod 600 "$tmp/token"
TOKEN=$(cat "$tmp/token")
AGENT_ARGS=(agent --listen "127.0.0.1:$AGENT_PORT" --data-dir "$tmp/agent" --token-file "$tmp/token"
  --instance-ports 19000-19099 --drain-ms 2000 --log-level "${LOG_LEVEL:-info}")
[ "$KEEPER" = 0 ] && "$FERRY" agent --help 2>/dev/null | grep -q -- --no-keeper && AGENT_ARGS+=(--no-keeper)

# The agent (its keeper, or the agent alone with KEEPER=0) under a supervising loop, as
# systemd with Restart=always, RestartSec=0 would
# run it: started again the moment no agent holds the data dir. After a crash the kernel
# has released the data-dir lock (flock) already, so the next agent starts at once; after a
# planned handoff the successor holds it (the lock is handed over, never released), and the
# loop waits until that one goes.
(
  until [ -f "$tmp/stop" ]; do
    "$FERRY" "${AGENT_ARGS[@]}" >>"$tmp/agent.log" 2>&1 || true
    [ -f "$tmp/stop" ] || flock "$tmp/agent/agent.lock" true
  done
) &
loop_pid=$!

api() { curl -s -H "Authorization: Bearer $TOKEN" "$@"; }
for _ in $(seq 100); do api "http://127.0.0.1:$AGENT_PORT/v1/health" >/dev/null && break; sleep 0.05; done
instance() {
  cat <<EOF
{"id":"$1","release":"v1","run":{"command":["$DEMO","--port","\${PORT}","--version","v1"],
 "stop_grace_ms":1000},"checks":{"readiness":{"kind":"http","path":"/healthz","interval_ms":100}}}
EOF
}
api -X PUT "http://127.0.0.1:$AGENT_PORT/v1/apps/web" -d "{\"app\":\"web\",\"generation\":1,
  \"listen_port\":$ROUTER_PORT,\"weights\":{\"v1\":100},
  \"instances\":[$(instance web-0),$(instance web-1)]}" >/dev/null
for _ in $(seq 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ROUTER_PORT/")" = 200 ] && break
  sleep 0.05
done

mkfifo "$tmp/never"
exec 4<>"$tmp/never"  # `read -t` on it is a sleep that starts no process
# The time (ms) until the router answers 200 again after `kill -9` at $1 (µs since epoch).
# The probe is bash itself (/dev/tcp, no curl process per try, which on a loaded machine
# costs more than what is measured): a connection that is accepted into the backlog
# waits for its answer; a refused one is tried again 2 ms later.
back_after() {
  local status t
  while :; do
    if exec 3<>"/dev/tcp/127.0.0.1/$ROUTER_PORT" 2>/dev/null; then
      printf 'GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3
      status=""
      IFS= read -r -t 5 status <&3 || true
      exec 3>&-
      [[ $status == "HTTP/1.1 200"* ]] && break
    else
      read -r -t 0.002 <&4 || true
    fi
  done
  t=${EPOCHREALTIME/./}
  echo $(((t - $1) / 1000))
}

run() {  # planned | crash
  local kind=$1 out back="-"
  if [ "$kind" = crash ]; then
    # Each crash is a first death: the keeper restarts a worker at once only when it lived
    # `stable_ms` (10 s); a worker dying sooner is a crash loop, restarted after a delay that
    # doubles from 100 ms (docs/agent.md). So the worker is STABLE_S old at the kill.
    local age
    age=$(ps -o etimes= -p "$(cat "$tmp/agent/agent.pid")" | tr -d ' ')
    [ "$((age + DURATION / 2))" -lt "$STABLE_S" ] && sleep $((STABLE_S - age - DURATION / 2))
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$ROUTER_PORT/" >"$tmp/wrk.out" &
  local wrk_pid=$!
  sleep $((DURATION / 2))
  local pid
  pid=$(cat "$tmp/agent/agent.pid")
  if [ "$kind" = planned ]; then
    kill -HUP "$pid"
  else
    echo "bench: killing $pid" >>"$tmp/agent.log"
    local t0=${EPOCHREALTIME/./}
    kill -9 "$pid"
    back_after "$t0" >"$tmp/back"
    back=$(cat "$tmp/back")
    # What the next agent process logged of its start: CPU ms, and ms from its start to its
    # routers serving (age at Agent::start + routers_serving_ms).
    sleep 0.5
    start=$(sed -n "/bench: killing $pid/,\$p" "$tmp/agent.log" | grep -m1 '"agent start timing"' || true)
    local cpu age serving
    cpu=$(grep -o '"cpu_ms":[0-9.]*' <<<"$start" | cut -d: -f2 || true)
    age=$(grep -o '"process_age_at_start_ms":[0-9.]*' <<<"$start" | cut -d: -f2 || true)
    serving=$(grep -o '"routers_serving_ms":[0-9.]*' <<<"$start" | cut -d: -f2 || true)
    back="$back | ${cpu:--} | $(awk -v a="${age:-}" -v s="${serving:-}" 'BEGIN { if (a == "" || s == "") print "-"; else printf "%.0f", a + s }')"
  fi
  wait "$wrk_pid"
  out=$(cat "$tmp/wrk.out")
  local total errors non2xx
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(awk '/Socket errors/ {gsub(",", ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ "$kind" = planned ] && back="- | - | -"
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "| $kind | $total | ${errors:-none} | ${non2xx:-0} | $back | $load |"
  # For the summary: ms until 200 again, wrk's connect + write errors (reconnects refused
  # or reset while no process accepted), the load.
  [ "$kind" = crash ] && echo "${back%% *} $(awk '/Socket errors/ {gsub(",", ""); print $4 + $8}' <<<"$out" | grep . || echo 0) $load" >>"$tmp/crashes"
  sleep 2.5  # the previous process drains (--drain-ms 2000) and exits
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); keeper: $KEEPER"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s keep-alive GET /, restart at $((DURATION / 2)) s"
echo
echo "| restart | requests | socket errors | non-2xx | ms until 200 again | next agent: start CPU ms | next agent: ms from start to routers serving | load (1 min) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for _ in $(seq "$ROUNDS"); do
  [ "$CRASH_ONLY" = 1 ] || run planned
  run crash
done
if [ -s "$tmp/crashes" ]; then
  echo
  sort -n "$tmp/crashes" | awk '{ ms[NR] = $1; refused += $2; if ($2 > rmax) rmax = $2; load[NR] = $3 }
    END { med = NR % 2 ? ms[(NR + 1) / 2] : (ms[NR / 2] + ms[NR / 2 + 1]) / 2
          lmin = lmax = load[1]; for (i in load) { if (load[i] < lmin) lmin = load[i]; if (load[i] > lmax) lmax = load[i] }
          printf "crash: %d rounds, ms until 200 again: median %s, max %s; refused/reset reconnects: %d in all (at most %d in one crash); load %s-%s\n", NR, med, ms[NR], refused, rmax, lmin, lmax }'
fi
keeper=$(pgrep -o -f "agent --listen 127.0.0.1:$AGENT_PORT " || true)
if [ -n "$keeper" ] && [ "$(cat "/proc/$keeper/comm" 2>/dev/null)" = ferry-keeper ]; then
  echo
  echo "keeper pid $keeper: $(awk '{printf "%.0f ms CPU (user+system) over the whole run", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$keeper/stat")"
fi
