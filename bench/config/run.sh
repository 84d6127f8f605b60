#!/usr/bin/env bash
# Times `ferry validate` on generated ferry.yaml files: the example, and the largest
# config the limits allow in apps (200 apps, each a 100-step canary, hooks and analysis).
# Usage: bench/config/run.sh [path/to/ferry] ; prints median wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
FERRY="${1:-build/src/cli/ferry}"
RUNS="${RUNS:-20}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp/large.yaml" <<'PY'
import sys
steps = ", ".join(["{weight: %d}" % w for w in range(1, 100)] + ["{weight: 100}"])
with open(sys.argv[1], "w") as f:
    f.write("version: 1\nenvironments:\n  dev: {}\n  staging: {requires: [dev]}\n")
    f.write("  production:\n    requires: [staging]\n    approvals: 2\n")
    f.write("    windows: [{days: Mon-Fri, start: \"09:00\", end: \"17:00\", timezone: Europe/Berlin}]\n")
    f.write("apps:\n")
    for i in range(200):
        f.write(f"""  app{i}:
    port: {10000 + i}
    run: {{command: ["./server", "--port", "${{PORT}}"], env: {{A: "1", B: "2"}}}}
    checks: {{readiness: {{http: /healthz}}, liveness: {{tcp: {{}}}}}}
    strategy: {{canary: {{steps: [{steps}]}}}}
    analysis: {{max_error_rate: 1%, latency: {{p99: 300ms, p95_ratio: 1.5}}}}
    hooks: {{pre_deploy: [{{name: backup, command: "./backup.sh", retries: 2}}]}}
    environments: {{production: {{instances: 4}}}}
""")
PY

measure() {  # file → "median_ms peak_kb"
  local file=$1 times=() rss=0
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    r=$( { /usr/bin/time -f "%M" "$FERRY" validate "$file" >/dev/null; } 2>&1 )
    t1=$(date +%s%N)
    times+=("$(( (t1 - t0) / 1000 ))")
    (( r > rss )) && rss=$r
  done
  median_us=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$(awk -v u="$median_us" 'BEGIN {printf "%.1f", u / 1000}') $rss"
}

printf '%-28s %10s %12s %12s\n' file bytes median_ms peak_rss_kb
for f in examples/ferry.yaml "$tmp/large.yaml"; do
  read -r ms kb < <(measure "$f")
  printf '%-28s %10s %12s %12s\n' "$(basename "$f")" "$(stat -c %s "$f")" "$ms" "$kb"
done
