#!/usr/bin/env python3
"""usage: timed.py REPORT.json -- CMD...  Runs CMD, then prints its throughput from the JSON
report's stats together with the wall time and the CPU time (user + system) the process used.
MB per CPU-second does not depend on how busy the machine's other processes keep the cores."""
import json
import resource
import subprocess
import sys
import time

report, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
start = time.monotonic()
subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
s = json.load(open(report))["stats"]
mb = s["bytes_scanned"] / 1e6
print(f"{s['files_scanned']} files, {mb:.0f} MB: scan {s['seconds']:.2f}s = {mb / s['seconds']:.0f} MB/s; "
      f"process wall {wall:.2f}s, CPU {cpu:.2f}s = {mb / cpu:.0f} MB per CPU-second")
