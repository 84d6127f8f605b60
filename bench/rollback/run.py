#!/usr/bin/env python3
"""Rollback benchmark: how fast ferry takes traffic off a bad canary, and what the
clients saw. Starts `ferry server` (with its local agent) on loopback with the demo
app, then repeats: deploy a good release, then canary a bad one (50% errors) under a
steady load through ferry's router, and reads back from the deployment's events
  - decision → traffic on stable (traffic_restored_ms of the rollback_started event),
  - first bad request → rollback decision (the load's first 5xx from the canary vs the
    rollback event's time),
  - requests the clients saw fail (5xx from the canary, connection errors).
Usage: bench/rollback/run.py [--runs 5] [--build build]"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import http.client
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stop_started(work, agent_port):
    """Stops the agent this run started (found by its unique --listen port) and the
    instances its state file names, by PID: never by a broad name."""
    needle = f"--listen\x00127.0.0.1:{agent_port}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"agent" in cmd and needle in cmd:
            os.kill(int(pid), signal.SIGTERM)
    time.sleep(0.5)
    try:
        with open(os.path.join(work, "data/agent/agent-state.json")) as f:
            state = json.load(f)
        for app in state.get("apps", []):
            for inst in app.get("instances", []):
                pid = inst.get("status", {}).get("pid", 0)
                if pid > 0:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
    except (OSError, ValueError):
        pass


class Api:
    def __init__(self, port, token):
        self.port, self.token = port, token

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def wait_final(self, dep_id, seconds=120):
        end = time.time() + seconds
        while time.time() < end:
            d = self.call("GET", f"/api/v1/deployments/{dep_id}")
            if d["state"] in ("succeeded", "failed", "rolled_back", "aborted"):
                return d
            time.sleep(0.1)
        raise RuntimeError(f"deployment {dep_id} did not end")


class Load:
    """Keep-alive GETs from a few threads, each answer timed (wall clock, ms)."""

    def __init__(self, port, threads=4, rate=100):
        self.port, self.stop, self.lock = port, False, threading.Lock()
        self.first_bad_ms, self.bad, self.errors, self.total = None, 0, 0, 0
        self.threads = [threading.Thread(target=self.run, args=(1.0 / rate,)) for _ in range(threads)]

    def run(self, gap):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        deadline = time.time() + 300
        while not self.stop and time.time() < deadline:
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                with self.lock:
                    self.total += 1
                    if r.status >= 500:
                        self.bad += 1
                        if self.first_bad_ms is None:
                            self.first_bad_ms = time.time() * 1000
            except Exception:
                with self.lock:
                    self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            time.sleep(gap)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        for t in self.threads:
            t.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    ferry = os.path.join(args.build, "src/cli/ferry")
    demo = os.path.join(args.build, "examples/demo-app/ferry-demo-app")
    work = tempfile.mkdtemp(prefix="ferry-bench-rollback-")
    sp, ap_, agp = free_port(), free_port(), free_port()
    cfg = os.path.join(work, "ferry.yaml")
    with open(cfg, "w") as f:
        f.write(f"""version: 1
server:
  listen: 127.0.0.1:{sp}
  store: sqlite:{work}/data/ferry.db
  data_dir: {work}/data
environments:
  dev: {{}}
apps:
  web:
    port: {ap_}
    instances: 2
    run:
      command: ["{demo}", "--port", "${{PORT}}", "--version", "${{VERSION}}"]
      stop_grace: 3s
    checks:
      readiness: {{http: {{path: /healthz}}, interval: 100ms, timeout: 500ms}}
    strategy:
      canary:
        steps: [{{weight: 10}}, {{analysis: 10s}}, {{weight: 100}}]
    analysis:
      interval: 1s
      window: 10s
      min_requests: 10
      max_error_rate: 5%
""")
    out = subprocess.run([ferry, "--json", "token", "create", "--offline", "--config", cfg, "--name", "bench",
                          "--role", "admin"], check=True, capture_output=True, text=True).stdout
    api = Api(sp, json.loads(out)["token"])
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([ferry, "server", "--config", cfg, "--agent-listen", f"127.0.0.1:{agp}"],
                              stdout=log, stderr=log)
    rows = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{sp}/health/live", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        version = 0

        def release(bad):
            nonlocal version
            version += 1
            v = f"v{version}"
            api.call("POST", "/api/v1/releases", {"app": "web", "version": v,
                                                  "env": {"DEMO_FAIL_RATE": "0.5"} if bad else {}})
            return v

        def deploy(v):
            return api.call("POST", "/api/v1/deployments", {"app": "web", "env": "dev", "release": v})["id"]

        api.wait_final(deploy(release(False)))
        for run in range(args.runs):
            with Load(ap_) as load:
                good = release(False)
                d = api.wait_final(deploy(good))  # analysis needs traffic: under load too
                assert d["state"] == "succeeded", d
                bad = release(True)
                time.sleep(1)
                with load.lock:
                    load.first_bad_ms, load.bad, load.errors, load.total = None, 0, 0, 0
                d = api.wait_final(deploy(bad))
                time.sleep(1)
            assert d["state"] == "rolled_back", d
            ev = [e for e in d["events"] if e["type"] == "rollback_started"][0]
            decision_after_first_bad = ev["time_ms"] - load.first_bad_ms if load.first_bad_ms else float("nan")
            decided = [e for e in d["events"] if e["type"] == "analysis" and e["data"].get("verdict") == "fail"]
            test = decided[0]["data"].get("test", "?") if decided else "?"
            rows.append({"run": run + 1, "test": test, "traffic_restored_ms": ev["data"].get("traffic_restored_ms"),
                         "first_bad_to_decision_ms": round(decision_after_first_bad),
                         "requests": load.total, "canary_5xx": load.bad, "connection_errors": load.errors})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        stop_started(work, agp)
    print("\n| run | deciding test | decision → traffic on stable | first bad request → decision | requests | 5xx seen | connection errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['run']} | {r['test']} | {r['traffic_restored_ms']} ms | {r['first_bad_to_decision_ms']} ms | "
              f"{r['requests']} | {r['canary_5xx']} | {r['connection_errors']} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
