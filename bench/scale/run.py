#!/usr/bin/env python3
"""Scale benchmark on one host (issue 22): many apps deployed at once, the idle agent, and
the cost per deployment over many sequential deployments of one app.

Starts `ferry server` (with its local agent on its Unix socket) on loopback with N copies
of the demo app (one instance each, readiness every 200 ms), then
  - at once:  deploys all N apps concurrently (one API call each, in threads) and waits for
              every deployment to end: time to all succeeded, failures, and the agent's
              threads, RSS and CPU;
  - idle:     with the N instances running, the agent's CPU over --idle seconds;
  - sequential (--sequential K): deploys app0 K times in a row with `ferry deploy --wait`
              (the CLI a CI job runs); per deployment its wall time and the agent's and
              server's CPU, first vs last tenth; the status answer's size after the 10th
              and after the last deployment, and the agent's RSS then.
Every process it starts it stops by pid. Usage:
  bench/scale/run.py [--apps 10,50,100,200] [--idle 60] [--sequential 1000] [--build build]"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_stat(pid):
    """(cpu seconds, threads, rss MiB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime (fields 14, 15)
    threads = int(fields[17])
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, threads, rss


def wakeups(pid):
    """Context switches of every thread of a process so far (each is a wakeup or a preemption)."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except OSError:
                pass
    return out


class Api:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.read_retries = 0  # status reads that timed out and were made again

    def call(self, method, path, body=None, timeout=30):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    def wait_final(self, dep_id, seconds=300):
        """The deployment once it ended. A read that times out (the client's, on a loaded
        machine) is read again: the deployment goes on regardless."""
        end = time.time() + seconds
        while time.time() < end:
            try:
                d = self.call("GET", f"/api/v1/deployments/{dep_id}")
            except (TimeoutError, OSError):
                self.read_retries += 1
                continue
            if d["state"] in ("succeeded", "failed", "rolled_back", "aborted"):
                return d
            time.sleep(0.2)
        raise RuntimeError(f"deployment {dep_id} did not end")


class Ferry:
    def __init__(self, build, apps, steady_interval=None):
        self.ferry = os.path.join(build, "src/cli/ferry")
        demo = os.path.join(build, "examples/demo-app/ferry-demo-app")
        self.work = tempfile.mkdtemp(prefix="ferry-bench-scale-")
        self.sp = free_port()
        cfg = os.path.join(self.work, "ferry.yaml")
        app_yaml = "".join(f"""  app{i}:
    port: {15000 + i}
    run:
      command: ["{demo}", "--port", "${{PORT}}", "--version", "${{VERSION}}"]
      stop_grace: 2s
    checks:
      readiness: {{http: {{path: /healthz}}, interval: 200ms, timeout: 500ms{{steady}}}}
    strategy: immediate
""" for i in range(apps))
        steady = f", steady_interval: {steady_interval}" if steady_interval else ""
        app_yaml = app_yaml.replace("{steady}", steady)
        with open(cfg, "w") as f:
            f.write(f"""version: 1
server:
  listen: 127.0.0.1:{self.sp}
  store: sqlite:{self.work}/data/ferry.db
  data_dir: {self.work}/data
environments:
  dev: {{}}
apps:
{app_yaml}""")
        out = subprocess.run([self.ferry, "--json", "token", "create", "--offline", "--config", cfg,
                              "--name", "bench", "--role", "admin"],
                             check=True, capture_output=True, text=True).stdout
        self.api = Api(self.sp, json.loads(out)["token"])
        self.log = open(os.path.join(self.work, "server.log"), "w")
        self.server = subprocess.Popen([self.ferry, "server", "--config", cfg],
                                       stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.sp}/health/live", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        self.agent = [p for p in children(self.server.pid)][0]  # the local agent we started
        self.version = 0

    def deploy(self, app):
        self.version += 1
        v = f"v{self.version}"
        self.api.call("POST", "/api/v1/releases", {"app": app, "version": v})
        return self.api.call("POST", "/api/v1/deployments", {"app": app, "env": "dev", "release": v})["id"]

    def cli_deploy(self, app):
        """`ferry deploy APP V --env dev --wait` for a new release: (seconds, exit code)."""
        self.version += 1
        v = f"v{self.version}"
        self.api.call("POST", "/api/v1/releases", {"app": app, "version": v})
        env = dict(os.environ, FERRY_SERVER=f"127.0.0.1:{self.sp}", FERRY_TOKEN=self.api.token)
        t0 = time.time()
        rc = subprocess.run([self.ferry, "deploy", app, v, "--env", "dev", "--wait",
                             "--timeout", "120s"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=180).returncode
        return time.time() - t0, rc

    def status_bytes(self, app):
        return len(json.dumps(self.api.call("GET", f"/api/v1/apps/{app}/envs/dev/status")))

    def stop(self):
        instances = children(self.agent)
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=20)
        os.kill(self.agent, signal.SIGTERM)
        time.sleep(0.5)
        for pid in instances:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.work, ignore_errors=True)


def at_once(build, n, idle_s, steady_interval=None, hold_s=0):
    f = Ferry(build, n, steady_interval)
    try:
        cpu0, _, _ = proc_stat(f.agent)
        t0 = time.time()
        ids, results = [None] * n, [None] * n

        def one(i):
            try:
                ids[i] = f.deploy(f"app{i}")
                d = f.api.wait_final(ids[i])
                events = d.get("events") or [{}]
                results[i] = d["state"] if d["state"] == "succeeded" else \
                    f"{d['state']}: {events[-1].get('message', '')}"[:300]
            except Exception as e:  # noqa: BLE001 - a failure is a result here
                results[i] = f"error: {e}"

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        cpu1, threads_n, rss = proc_stat(f.agent)
        failed = [r for r in results if r != "succeeded"]
        row = {"apps": n, "steady_interval": steady_interval, "all_done_s": round(elapsed, 2), "failed": len(failed),
               "agent_threads": threads_n, "agent_rss_mib": round(rss, 1),
               "agent_cpu_s": round(cpu1 - cpu0, 2), "failures": failed[:3],
               "client_read_retries": f.api.read_retries}
        if idle_s:
            time.sleep(2)
            c0, s0 = proc_stat(f.agent)[0], proc_stat(f.server.pid)[0]
            w0 = wakeups(f.agent)
            time.sleep(idle_s)
            c1, s1 = proc_stat(f.agent)[0], proc_stat(f.server.pid)[0]
            w1 = wakeups(f.agent)
            row["idle_s"] = idle_s
            row["idle_agent_cpu_s"] = round(c1 - c0, 2)
            row["idle_agent_cpu_pct"] = round(100 * (c1 - c0) / idle_s, 2)
            row["idle_agent_wakeups_per_s"] = round((w1 - w0) / idle_s)
            row["idle_server_cpu_s"] = round(s1 - s0, 2)
            row["idle_server_cpu_pct"] = round(100 * (s1 - s0) / idle_s, 2)
        if hold_s:
            # Left running for a profiler: perf record -g -p AGENT, strace -c -f -p AGENT.
            print(json.dumps({"hold_s": hold_s, "agent_pid": f.agent, "server_pid": f.server.pid}),
                  flush=True)
            time.sleep(hold_s)
        with open("/proc/loadavg") as la:
            row["loadavg"] = la.read().split()[0]
        print(json.dumps(row), flush=True)
        return row
    finally:
        f.stop()


def sequential(build, k, max_s):
    f = Ferry(build, 1)
    rows, sizes = [], {}
    t_end = time.time() + max_s
    try:
        for i in range(k):
            if time.time() > t_end:  # bounded in time: report what was done
                k = i
                break
            a0, s0 = proc_stat(f.agent)[0], proc_stat(f.server.pid)[0]
            wall, rc = f.cli_deploy("app0")
            rows.append({"wall_ms": wall * 1000, "ok": rc == 0,
                         "agent_cpu_ms": (proc_stat(f.agent)[0] - a0) * 1000,
                         "server_cpu_ms": (proc_stat(f.server.pid)[0] - s0) * 1000})
            if i + 1 == 10:
                sizes[10] = f.status_bytes("app0")
            if i + 1 == 10:
                rss10 = proc_stat(f.agent)[2]
            if (i + 1) % 100 == 0:
                with open("/proc/loadavg") as la:
                    print(json.dumps({"done": i + 1, "loadavg": la.read().split()[0]}), flush=True)
        sizes[k] = f.status_bytes("app0")
        rss_end = proc_stat(f.agent)[2]
    finally:
        f.stop()
    tenth = max(1, k // 10)

    def avg(part, key):
        return round(sum(r[key] for r in part) / len(part), 1)

    first, last = rows[:tenth], rows[-tenth:]
    out = {"deployments": k, "failed": sum(not r["ok"] for r in rows),
           "status_bytes": {"10th": sizes.get(10), "last": sizes.get(k)},
           "agent_rss_mib": {"10th": round(rss10, 1) if k >= 10 else None,
                             "last": round(rss_end, 1)}}
    for key in ("wall_ms", "agent_cpu_ms", "server_cpu_ms"):
        out[key] = {"first_tenth": avg(first, key), "last_tenth": avg(last, key),
                    "10th_to_19th": avg(rows[9:19], key) if k >= 19 else None,
                    "last_10": avg(rows[-10:], key)}
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", default="10,50,100,200")
    ap.add_argument("--idle", type=int, default=60,
                    help="seconds the agent's and server's idle CPU is measured over (N >= 100)")
    ap.add_argument("--hold", type=int, default=0,
                    help="after the idle measurement, keep the fleet running this long (profiling)")
    ap.add_argument("--sequential", type=int, default=1000)
    ap.add_argument("--sequential-max-s", type=int, default=3600,
                    help="stop the sequential run after this long and report what was done")
    ap.add_argument("--steady-interval", default="",
                    help="readiness steady_interval for the at-once/idle runs, e.g. 2s")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        print(json.dumps({"loadavg_at_start": f.read().split()[:3], "cpus": os.cpu_count()}),
              flush=True)
    for n in [int(x) for x in args.apps.split(",") if x]:
        at_once(args.build, n, args.idle if n >= 100 else 0, args.steady_interval or None,
                args.hold)
    if args.sequential:
        sequential(args.build, args.sequential, args.sequential_max_s)


if __name__ == "__main__":
    sys.exit(main())
