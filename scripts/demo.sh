#!/usr/bin/env bash
# The README demo: installs what ferry needs, builds it, starts `ferry server` (which
# starts its local agent) on loopback, then under steady load through ferry's router:
#   1. deploys web v1,
#   2. canaries a good v2 to 100%,
#   3. canaries a bad v3 (50% errors) that ferry rolls back by itself,
# printing each deployment's timeline, the load's outcome, the history and the audit chain.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ "${FERRY_SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh --demo; fi
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
echo "== build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"${JOBS:-2}" ferry ferry-demo-app ferry-loadgen | tail -n 1

BIN="$ROOT/build"
FERRY="$BIN/src/cli/ferry"
LOADGEN="$BIN/examples/loadgen/ferry-loadgen"
SERVER_PORT=${DEMO_SERVER_PORT:-17070}
AGENT_PORT=${DEMO_AGENT_PORT:-$((SERVER_PORT + 1))}
APP_PORT=${DEMO_APP_PORT:-18080}
WORK="$ROOT/.ferry-demo"
# The demo stops only what it started, by PID: its server, and its agent, which stops the
# instances it started (--stop-instances-on-exit). A demo killed before its cleanup leaves
# them running; their PIDs are in $WORK/pids, and only those are stopped here.
if [ -f "$WORK/pids" ]; then
  while read -r pid what; do
    # Only a process that still runs the command recorded for it (PIDs are reused).
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$what"; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done <"$WORK/pids"
  sleep 1
fi
rm -rf "$WORK"
mkdir -p "$WORK/agent"
( umask 077; python3 -c 'import secrets; print(secrets.token_hex(24))' >"$WORK/agent.token" )
sed -e "s|@BIN@|$BIN|g" -e "s|@SERVER_PORT@|$SERVER_PORT|g" -e "s|@APP_PORT@|$APP_PORT|g" \
    -e "s|@AGENT_PORT@|$AGENT_PORT|g" -e "s|@AGENT_TOKEN@|$WORK/agent.token|g" \
    -e "s|@DATA@|$WORK/data|g" examples/demo/ferry.yaml.in > "$WORK/ferry.yaml"

cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  # The agent outlives the server by design; the demo stops it, and it stops its instances.
  [ -n "${AGENT_PID:-}" ] && kill -TERM "$AGENT_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== ferry agent on 127.0.0.1:$AGENT_PORT (log: $WORK/agent.log)"
"$FERRY" agent --listen "127.0.0.1:$AGENT_PORT" --data-dir "$WORK/agent" \
  --token-file "$WORK/agent.token" --stop-instances-on-exit 2>>"$WORK/agent.log" &
AGENT_PID=$!
echo "$AGENT_PID ferry agent --listen 127.0.0.1:$AGENT_PORT" >>"$WORK/pids"

echo "== ferry validate"
"$FERRY" validate "$WORK/ferry.yaml"
echo "== first admin token (written to the store directly)"
export FERRY_TOKEN=$("$FERRY" token create --offline --config "$WORK/ferry.yaml" --name demo-admin --role admin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
export FERRY_SERVER="127.0.0.1:$SERVER_PORT"
echo "== ferry server on $FERRY_SERVER (log: $WORK/server.log)"
"$FERRY" server --config "$WORK/ferry.yaml" --log-file "$WORK/server.log" 2>>"$WORK/server.log" &
SERVER_PID=$!
echo "$SERVER_PID ferry server --config $WORK/ferry.yaml" >>"$WORK/pids"
for _ in $(seq 1 100); do
  curl -sf "http://$FERRY_SERVER/health/live" >/dev/null && break
  sleep 0.1
done

"$FERRY" release create web v1 --git-sha 1111111 --source examples/demo-app
"$FERRY" release create web v2 --git-sha 2222222 --source examples/demo-app
"$FERRY" release create web v3 --git-sha 3333333 --set-env DEMO_FAIL_RATE=0.5

echo; echo "== 1. deploy web v1 (first release: straight to 100%)"
"$FERRY" deploy web v1 --env dev

load() {  # $1 seconds, $2 output file
  "$LOADGEN" --target "127.0.0.1:$APP_PORT" --threads 4 --rps 200 --seconds "$1" --out "$2" >/dev/null &
  LOAD_PID=$!
}
report() {  # $1 summary file
  python3 - "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"   load: {s['requests']} requests, {s.get('errors', 0)} connection errors, "
      f"by status {s.get('by_class', {})}, by release {s.get('by_release', {})}")
PY
}

echo; echo "== 2. canary web v2 (good) under load"
load 60 "$WORK/load-v2.json"
sleep 1
"$FERRY" deploy web v2 --env dev
kill -INT "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true
report "$WORK/load-v2.json"

echo; echo "== 3. canary web v3 (50% errors) under load: ferry rolls it back by itself"
load 60 "$WORK/load-v3.json"
sleep 1
"$FERRY" deploy web v3 --env dev || true
kill -INT "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true
report "$WORK/load-v3.json"

echo; echo "== history"
"$FERRY" history web --env dev
echo; echo "== serving now"
curl -s "http://127.0.0.1:$APP_PORT/"
echo; echo "== audit chain"
"$FERRY" audit verify || true
echo; echo "demo done; state in $WORK"
