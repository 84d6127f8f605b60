#!/usr/bin/env python3
"""Immediate rollback benchmark: time from `ferry rollback` to 100% of traffic on the
good release, with the previous release's instances kept warm (keep_previous) and
without (they must be started). Starts `ferry server` with its local agent on loopback
and the demo app (strategy immediate, so a bad release can become stable), then per run:
deploy good v(N), deploy bad v(N+1) (50% errors) and, under a steady load, run
`ferry rollback web --env dev --detach` and measure
  - command → weight 100% on the good release (the weight step's step_finished event
    minus the wall time just before the command),
  - command → the last answer the clients got from the bad release,
  - 5xx the clients saw after the command.
Usage: bench/rollback/immediate.py [--runs 5] [--build build]"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, threading, time
import http.client
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Api, free_port, stop_started, ROOT  # noqa: E402


class VersionLoad:
    """Keep-alive GETs from a few threads; records (time ms, version, status) of each answer."""

    def __init__(self, port, threads=4, gap=0.005):
        self.port, self.stop, self.lock, self.gap = port, False, threading.Lock(), gap
        self.answers = []
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        deadline = time.time() + 300
        while not self.stop and time.time() < deadline:
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                with self.lock:
                    self.answers.append((time.time() * 1000, r.getheader("X-Demo-Version", ""), r.status))
            except Exception:
                with self.lock:
                    self.answers.append((time.time() * 1000, "", 0))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            time.sleep(self.gap)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        for t in self.threads:
            t.join()


def one_setup(args, keep):
    ferry = os.path.join(args.build, "src/cli/ferry")
    demo = os.path.join(args.build, "examples/demo-app/ferry-demo-app")
    work = tempfile.mkdtemp(prefix="ferry-bench-immediate-")
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
    keep_previous: {keep}
    run:
      command: ["{demo}", "--port", "${{PORT}}", "--version", "${{VERSION}}"]
      stop_grace: 3s
    checks:
      readiness: {{http: {{path: /healthz}}, interval: 100ms, timeout: 500ms}}
    strategy: immediate
""")
    out = subprocess.run([ferry, "--json", "token", "create", "--offline", "--config", cfg, "--name", "bench",
                          "--role", "admin"], check=True, capture_output=True, text=True).stdout
    token = json.loads(out)["token"]
    api = Api(sp, token)
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
            d = api.call("POST", "/api/v1/deployments", {"app": "web", "env": "dev", "release": v})
            return api.wait_final(d["id"])

        for run in range(args.runs):
            good = release(False)
            assert deploy(good)["state"] == "succeeded"
            bad = release(True)
            assert deploy(bad)["state"] == "succeeded"
            time.sleep(0.5)
            with VersionLoad(ap_) as load:
                time.sleep(1.0)
                env = dict(os.environ, FERRY_SERVER=f"127.0.0.1:{sp}", FERRY_TOKEN=token)
                t_cmd = time.time() * 1000
                out = subprocess.run([ferry, "--json", "rollback", "web", "--env", "dev", "--detach"],
                                     env=env, check=True, capture_output=True, text=True).stdout
                dep_id = out.split("deployment ")[1].split()[0]
                d = api.wait_final(dep_id)
                time.sleep(0.5)
            assert d["state"] == "succeeded", d
            switched = [e for e in d["events"] if e["type"] == "step_finished"
                        and e.get("data", {}).get("weight") == 100]
            switch_ms = switched[0]["time_ms"] - t_cmd
            after = [a for a in load.answers if a[0] >= t_cmd]
            last_bad = max((a[0] for a in after if a[1] == bad), default=t_cmd) - t_cmd
            rows.append({"keep_previous": keep, "run": run + 1, "command_to_100pct_ms": round(switch_ms),
                         "last_bad_answer_ms": round(last_bad), "answers_after_command": len(after),
                         "5xx_after_command": sum(1 for a in after if a[2] >= 500),
                         "connection_errors": sum(1 for a in after if a[2] == 0)})
            print(json.dumps(rows[-1]), flush=True)
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        stop_started(work, agp)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    rows = one_setup(args, "10m") + one_setup(args, "0s")
    print("\n| keep_previous | run | command → 100% on good | last answer from bad | 5xx after command | connection errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['keep_previous']} | {r['run']} | {r['command_to_100pct_ms']} ms | {r['last_bad_answer_ms']} ms | "
              f"{r['5xx_after_command']} of {r['answers_after_command']} | {r['connection_errors']} |")


if __name__ == "__main__":
    sys.exit(main())
