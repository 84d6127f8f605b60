#!/usr/bin/env python3
"""Checks deploy/grafana/ferry-dashboard.json and the metric names in deploy/.

usage: check_dashboard.py SOURCE_DIR WORK_DIR

- the dashboard is valid JSON, panel ids are unique, panels fit the 24-column grid;
- the panels the operators rely on are there (request rate, error rate, p95 by release,
  deployments, rollbacks);
- every PromQL expression parses (written into a rule file for `promtool check rules`,
  Grafana's variables replaced) when promtool is installed;
- every ferry metric named in the dashboard or the rules is one ferry exposes (a typo
  would be a panel or an alert that silently never shows anything), and every recording
  rule the dashboard reads is defined in ferry-rules.yml.
"""
import json
import os
import re
import shutil
import subprocess
import sys

# The metrics ferry exposes (docs/observability.md lists them with types and labels).
EXPOSED = {
    "ferry_router_requests_total", "ferry_router_request_duration_seconds",
    "ferry_deployments_total", "ferry_rollbacks_total", "ferry_deployment_duration_seconds",
    "ferry_instance_up", "ferry_instance_restarts_total", "ferry_health_check_failures_total",
    "ferry_hook_duration_seconds", "ferry_notifications_total", "ferry_agent_up",
    "ferry_backup_last_success_timestamp_seconds", "ferry_backup_interval_seconds",
    "ferry_backup_failures_total", "ferry_backup_restore_drill_seconds",
    "ferry_router_tls_reloads_total", "ferry_router_tls_reload_failures_total",
    "ferry_router_tls_reload_failing", "ferry_router_access_log_lines_total",
    "ferry_acme_certificate_failing", "ferry_acme_order_failures_total",
    "ferry_acme_certificates_issued_total", "ferry_acme_certificate_expiry_timestamp_seconds",
}
HISTOGRAMS = {"ferry_router_request_duration_seconds", "ferry_deployment_duration_seconds",
              "ferry_hook_duration_seconds"}
ALLOWED = set(EXPOSED)
for h in HISTOGRAMS:
    ALLOWED |= {h + "_bucket", h + "_sum", h + "_count"}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def metric_names(text):
    return set(re.findall(r"\bferry_[a-z0-9_]+", text))


def main():
    src, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    dash_path = os.path.join(src, "deploy/grafana/ferry-dashboard.json")
    rules_path = os.path.join(src, "deploy/prometheus/ferry-rules.yml")
    with open(dash_path, encoding="utf-8") as f:
        dash = json.load(f)  # raises (and fails the test) on invalid JSON
    rules_text = open(rules_path, encoding="utf-8").read()

    panels = dash.get("panels", [])
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        fail("panel ids repeat: %s" % ids)
    exprs = []
    titles = []
    for p in panels:
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24:
            fail("panel %r is wider than the grid" % p.get("title"))
        if p.get("type") == "row":
            continue
        titles.append(p.get("title", "").lower())
        targets = p.get("targets", [])
        if not targets:
            fail("panel %r has no query" % p.get("title"))
        for t in targets:
            if not t.get("expr"):
                fail("panel %r has a target without expr" % p.get("title"))
            exprs.append((p.get("title"), t.get("expr", "")))
    for a in dash.get("annotations", {}).get("list", []):
        exprs.append(("annotation " + a.get("name", ""), a.get("expr", "")))

    for want in ["request rate by release", "error rate", "p95 latency by release",
                 "deployments", "rollbacks"]:
        if not any(want in t for t in titles):
            fail("no panel titled like %r" % want)

    for where, text in [("dashboard", json.dumps(dash)), ("ferry-rules.yml", rules_text)]:
        unknown = metric_names(text) - ALLOWED
        if unknown:
            fail("%s names metrics ferry does not expose: %s" % (where, sorted(unknown)))
    recorded = set(re.findall(r"record:\s*(\S+)", rules_text))
    used = set(re.findall(r"ferry:[a-z0-9_:]+", json.dumps(dash)))
    if used - recorded:
        fail("dashboard reads recording rules not in ferry-rules.yml: %s" % sorted(used - recorded))

    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool not installed: PromQL syntax not checked "
              "(scripts/install-deps.sh --test installs it)")
    else:
        subst = {"$__rate_interval": "5m", "$__interval": "10m", "$__range": "6h",
                 "$app": ".*", "$env": ".*"}
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        for i, (title, e) in enumerate(exprs):
            for k, v in subst.items():
                e = e.replace(k, v)
            lines.append("      - record: dashboard:expr_%d" % i)
            lines.append("        expr: %s" % json.dumps(e))
        path = os.path.join(work, "dashboard-exprs.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            fail("a dashboard query does not parse:\n" + r.stdout + r.stderr)
    print("checked %d panels, %d queries" % (len(titles), len(exprs)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
