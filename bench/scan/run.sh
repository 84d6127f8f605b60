#!/usr/bin/env bash
# Measures `ferry scan` throughput on 2 cores and compares it with secretlint.
#
# usage: bench/scan/run.sh [TREE_MB=1024] [SECRETLINT_MB=20]
#   FERRY_BIN   the ferry binary (default build/src/cli/ferry)
#   SKIP_SECRETLINT=1  skip the secretlint comparison (it needs npm and the npm registry)
#
# Generates a tree of real source text with planted secrets under /tmp (bench/scan/gen_tree.py),
# writes it back (sync) and scans it once to warm the page cache, then three timed runs pinned to CPUs 0-1 with
# --threads 2; prints bytes, seconds and MB/s (MB = 10^6 bytes) of each run, and MB per
# CPU-second (which does not depend on other load on the machine), and checks that every
# planted secret was reported. Everything it writes under /tmp is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
TREE_MB="${1:-1024}"
SL_MB="${2:-20}"
FERRY="$(realpath "${FERRY_BIN:-build/src/cli/ferry}")"
WORK="$(mktemp -d /tmp/ferry-scan-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
pin="taskset -c 0,1"
command -v taskset >/dev/null || pin=""

echo "== machine"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores visible; $(free -g | awk '/Mem:/{print $2}') GiB RAM"
echo "ferry: $("$FERRY" --version)"

echo "== tree of ${TREE_MB} MiB"
python3 bench/scan/gen_tree.py "$WORK/tree" "$TREE_MB" 20
sync  # the tree's pages written back now, not by the kernel during the timed runs
"$FERRY" scan --threads 2 "$WORK/tree" >/dev/null || true  # warm the page cache

check_planted() {  # report.json planted-list -> "found/total"
  python3 - "$1" "$2" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
secrets = {f["secret"] for f in report["findings"]}
planted = [p for p in open(sys.argv[2]).read().split() if p]
print(f"{sum(p in secrets for p in planted)}/{len(planted)} planted secrets found, "
      f"{len(report['findings'])} findings in all")
PY
}

echo "== ferry scan --threads 2 (3 runs)"
for i in 1 2 3; do
  python3 bench/scan/timed.py "$WORK/r.json" -- $pin "$FERRY" scan --threads 2 --no-redact \
    --format json --output "$WORK/r.json" "$WORK/tree"
done
check_planted "$WORK/r.json" "$WORK/tree.planted"
rm -rf "$WORK/tree" "$WORK/tree.planted"

echo "== keyword-dense synthetic tree of $((TREE_MB / 2)) MiB (token/password/secret on most lines)"
python3 bench/scan/gen_tree.py "$WORK/syn" "$((TREE_MB / 2))" 20 --synthetic
sync
"$FERRY" scan --threads 2 "$WORK/syn" >/dev/null || true
for t in 1 2; do
  echo -n "--threads $t: "
  python3 bench/scan/timed.py "$WORK/y.json" -- $pin "$FERRY" scan --threads $t --no-redact \
    --format json --output "$WORK/y.json" "$WORK/syn"
done
check_planted "$WORK/y.json" "$WORK/syn.planted"
rm -rf "$WORK/syn" "$WORK/syn.planted"

if [ "${SKIP_SECRETLINT:-0}" = 1 ]; then exit 0; fi
echo "== vs secretlint on a ${SL_MB} MiB tree"
python3 bench/scan/gen_tree.py "$WORK/small" "$SL_MB" 5
(cd "$WORK" && mkdir sl && cd sl && npm init -y >/dev/null 2>&1 &&
  npm install --no-audit --no-fund secretlint @secretlint/secretlint-rule-preset-recommend \
    >/dev/null 2>&1)
echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' > "$WORK/sl/.secretlintrc.json"
echo "secretlint: $(cd "$WORK/sl" && npx secretlint --version 2>/dev/null)"
"$FERRY" scan --threads 2 "$WORK/small" >/dev/null || true
start=$(date +%s.%N)
$pin "$FERRY" scan --threads 2 --no-redact --format json --output "$WORK/f.json" "$WORK/small" \
  2>/dev/null || true
end=$(date +%s.%N)
echo "ferry:      $(python3 -c "print(f\"{$end - $start:.2f}\")") s; $(check_planted "$WORK/f.json" "$WORK/small.planted")"
start=$(date +%s.%N)
(cd "$WORK/sl" && $pin npx secretlint --secretlintrc .secretlintrc.json --format json \
  "$WORK/small/**/*" > "$WORK/s.json" 2>/dev/null) || true
end=$(date +%s.%N)
found=$(python3 -c "import json,sys; print(sum(len(f['messages']) for f in json.load(open(sys.argv[1]))))" "$WORK/s.json")
echo "secretlint: $(python3 -c "print(f\"{$end - $start:.2f}\")") s; $found findings"
