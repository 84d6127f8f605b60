#!/usr/bin/env python3
"""usage: ab.py TREE ROUNDS NAME=FERRY_BIN [NAME=FERRY_BIN...] [-- EXTRA SCAN ARGS]

Compares `ferry scan --threads 2` builds on one tree on a shared machine: the binaries run
in turn (A B A B ...), ROUNDS times each, pinned to CPUs 0-1, so load from other processes
falls on all of them alike. Prints per run the CPU-seconds (user + system) of the process,
its wall time and the 1-minute load average before it; then per binary the median and best
MB per CPU-second, and whether every binary reported exactly the same findings (file, line,
column, rule, secret). MB = 10^6 bytes of scanned text (the report's bytes_scanned).
Each binary scans once untimed first (page cache, the Vectorscan database cache)."""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

args = sys.argv[1:]
extra = []
if "--" in args:
    extra = args[args.index("--") + 1:]
    args = args[:args.index("--")]
tree, rounds, bins = args[0], int(args[1]), [a.split("=", 1) for a in args[2:]]
pin = ["taskset", "-c", "0,1"]
out = tempfile.mkdtemp(prefix="ferry-scan-ab.")


def run(binary, report):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = open("/proc/loadavg").read().split()[0]
    start = time.monotonic()
    subprocess.run(pin + [binary, "scan", "--threads", "2", "--no-redact", "--format", "json",
                          "--output", report] + extra + [tree],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = after.ru_utime - before.ru_utime
    cpu = user + (after.ru_stime - before.ru_stime)
    return cpu, wall, load, user


def findings(report):
    r = json.load(open(report))
    keys = sorted((f["file"], f["line"], f["column"], f["rule_id"], f["secret"])
                  for f in r["findings"])
    return keys, r["stats"]["bytes_scanned"]


results = {name: [] for name, _ in bins}
seen = {}
for name, binary in bins:
    run(binary, os.path.join(out, name + ".json"))
for i in range(rounds):
    for name, binary in bins:
        report = os.path.join(out, name + ".json")
        cpu, wall, load, user = run(binary, report)
        keys, nbytes = findings(report)
        seen[name] = keys
        results[name].append((cpu, wall, load, nbytes, user))
        print(f"{name:>10} round {i + 1}: load {load}  CPU {cpu:.2f}s (user {user:.2f}s)  wall {wall:.2f}s  "
              f"{nbytes / 1e6 / cpu:.0f} MB per CPU-second", flush=True)
for name, rs in results.items():
    rates = [r[3] / 1e6 / r[0] for r in rs]
    print(f"{name:>10}: {rs[0][3] / 1e6:.0f} MB; MB per CPU-second median {statistics.median(rates):.0f}, "
          f"best {max(rates):.0f}; CPU-s median {statistics.median(r[0] for r in rs):.2f} "
          f"(user {statistics.median(r[4] for r in rs):.2f}); "
          f"load {min(r[2] for r in rs)}-{max(r[2] for r in rs)}; {len(seen[name])} findings")
names = list(seen)
same = all(seen[n] == seen[names[0]] for n in names)
print("same findings in every build:", "yes" if same else "NO")
for n in os.listdir(out):
    os.unlink(os.path.join(out, n))
os.rmdir(out)
sys.exit(0 if same else 1)
