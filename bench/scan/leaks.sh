#!/usr/bin/env bash
# Recall and precision of `ferry scan` (default rules) on leaked-style credential files, side
# by side with secretlint (recommended preset) on the same folders.
#
# usage: bench/scan/leaks.sh
#   FERRY_BIN       the ferry binary (default build/src/cli/ferry)
#   SCAN_TESTS_BIN  the scan test binary that writes the corpus (default build/tests/scan/scan_tests)
#   SKIP_SECRETLINT=1  skip secretlint (it needs npm and the npm registry)
#
# The corpus is the 44 samples of tests/scan/credential_samples.h (one file per format, each
# with its clean twin), written by the test CredentialCorpus.WriteForBenchmark; the clean side
# also gets up to 400 configuration files of the machine (/usr/share, /etc/*.conf; no key or
# password file). Counts: files covered (a finding on a line that holds an expected secret),
# expected lines found, and findings in clean files. Everything under /tmp is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
FERRY="$(realpath "${FERRY_BIN:-build/src/cli/ferry}")"
TESTS="$(realpath "${SCAN_TESTS_BIN:-build/tests/scan/scan_tests}")"
WORK="$(mktemp -d /tmp/ferry-leaks-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

FERRY_SCAN_CORPUS_DIR="$WORK/corpus" "$TESTS" --gtest_filter='CredentialCorpus.*' >/dev/null
python3 - "$WORK/corpus/clean/system" <<'PY'
import os, shutil, sys
out = sys.argv[1]
ext = (".conf", ".ini", ".json", ".yml", ".yaml", ".xml", ".properties", ".cfg", ".toml")
skip = ("shadow", "gshadow", "ssh", "ssl", "private", "secret", "key")
files = []
for base in ("/usr/share", "/etc"):
    for d, dirs, names in os.walk(base):
        dirs.sort()
        if any(s in d for s in skip):
            continue
        for n in sorted(names):
            p = os.path.join(d, n)
            if n.endswith(ext) and not any(s in n for s in skip) and os.path.isfile(p) \
                    and not os.path.islink(p) and 0 < os.path.getsize(p) < 256 * 1024:
                files.append(p)
step = max(1, len(files) // 400)
for p in files[::step][:400]:
    dst = os.path.join(out, p.lstrip("/"))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        shutil.copyfile(p, dst)
    except OSError:
        pass
PY
nclean=$(find "$WORK/corpus/clean" -type f | wc -l)
echo "corpus: $(find "$WORK/corpus/leaked" -type f | wc -l) leaked files, $nclean clean files" \
  "($(find "$WORK/corpus/clean/system" -type f | wc -l) of them from the machine)"
echo "ferry: $("$FERRY" --version)"

score() {  # tool report-leaked report-clean
  python3 - "$WORK/corpus/expected.tsv" "$@" <<'PY'
import json, sys
expected_tsv, tool, leaked, clean = sys.argv[1:5]
want = {}
for row in open(expected_tsv):
    path, line, _ = row.rstrip("\n").split("\t")
    want.setdefault(path, set()).add(int(line))
def hits(report):
    data = json.load(open(report))
    out = []
    if tool == "ferry":
        for f in data["findings"]:
            out.append((f["file"], f["line"]))
    else:  # secretlint: [{filePath, messages: [{loc: {start: {line}}}]}]
        for r in data:
            for m in r.get("messages", []):
                out.append((r["filePath"], m["loc"]["start"]["line"]))
    return out
def rel(p, root):
    return p.split(root, 1)[1] if root in p else p
leak = [(rel(p, "/leaked/"), l) for p, l in hits(leaked)]
found_lines = {(p, l) for p, l in leak if l in want.get(p, ())}
covered = {p for p, _ in found_lines}
total_lines = sum(len(v) for v in want.values())
clean_hits = hits(clean)
print(f"{tool}: files covered {len(covered)}/{len(want)}, lines found {len(found_lines)}/{total_lines}, "
      f"findings in leaked files {len(leak)}, findings in clean files {len(clean_hits)}")
missed = sorted(set(want) - covered)
if missed:
    print(f"  files missed: {' '.join(missed)}")
for p, l in sorted(set(clean_hits))[:20]:
    print(f"  clean finding: {p}:{l}")
PY
}

"$FERRY" scan --threads 2 --no-redact --format json --output "$WORK/f-leaked.json" \
  "$WORK/corpus/leaked" 2>/dev/null || true
"$FERRY" scan --threads 2 --no-redact --format json --output "$WORK/f-clean.json" \
  "$WORK/corpus/clean" 2>/dev/null || true
score ferry "$WORK/f-leaked.json" "$WORK/f-clean.json"

if [ "${SKIP_SECRETLINT:-0}" = 1 ]; then exit 0; fi
(cd "$WORK" && mkdir sl && cd sl && npm init -y >/dev/null 2>&1 &&
  npm install --no-audit --no-fund secretlint @secretlint/secretlint-rule-preset-recommend \
    >/dev/null 2>&1)
echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' > "$WORK/sl/.secretlintrc.json"
echo "secretlint: $(cd "$WORK/sl" && npx secretlint --version 2>/dev/null)"
for side in leaked clean; do
  # Every file by name: secretlint's globs skip dot-files such as .netrc.
  (cd "$WORK/sl" && find "$WORK/corpus/$side" -type f -print0 |
    xargs -0 npx secretlint --secretlintrc .secretlintrc.json --format json \
      > "$WORK/s-$side.json" 2>/dev/null) || true
done
score secretlint "$WORK/s-leaked.json" "$WORK/s-clean.json"
