#!/usr/bin/env python3
"""Checks GitHub Actions workflow files against a subset of the workflow schema that we
wrote (actionlint is not packaged for Debian), plus what only ferry can check: every
`ferry` command line in a `run:` script names a real verb and only flags that verb takes
(asked of the built binary's --help), and ferry's own CI runs the README's test command.

usage: check_workflows.py FERRY_BINARY REPO_ROOT WORKFLOW.yml...
       check_workflows.py --self-test FERRY_BINARY
Exit 0 when every file passes; 1 with one line per problem otherwise.
"""
import os
import re
import shlex
import subprocess
import sys

import yaml

TOP_KEYS = {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
EVENTS = {"push", "pull_request", "pull_request_target", "workflow_dispatch", "schedule",
          "release", "workflow_call", "workflow_run", "repository_dispatch", "merge_group"}
JOB_KEYS = {"name", "runs-on", "needs", "if", "environment", "permissions", "env", "steps",
            "outputs", "timeout-minutes", "container", "concurrency", "strategy", "defaults",
            "services", "continue-on-error"}
STEP_KEYS = {"id", "name", "uses", "run", "with", "env", "if", "shell", "working-directory",
             "continue-on-error", "timeout-minutes"}
PERMISSION_SCOPES = {"actions", "attestations", "checks", "contents", "deployments",
                     "id-token", "issues", "discussions", "packages", "pages",
                     "pull-requests", "repository-projects", "security-events", "statuses"}
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
USES_RE = re.compile(r"^(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?@[A-Za-z0-9_./-]+"
                     r"|\./[A-Za-z0-9_./-]+|docker://\S+)$")
EXPR_RE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class Checker:
    def __init__(self, ferry, root):
        self.ferry = ferry
        self.root = root
        self.problems = []
        self.help_cache = {}

    def bad(self, where, msg):
        self.problems.append("%s: %s" % (where, msg))

    # --- the schema subset -------------------------------------------------------------
    def check_file(self, path, text=None):
        if text is None:
            with open(path) as f:
                text = f.read()
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            self.bad(path, "not YAML: %s" % e)
            return
        if not isinstance(doc, dict):
            self.bad(path, "a workflow is a mapping")
            return
        # YAML 1.1 reads the key `on` as true.
        if True in doc:
            doc["on"] = doc.pop(True)
        for k in doc:
            if k not in TOP_KEYS:
                self.bad(path, "unknown top-level key %r" % k)
        self.check_on(path, doc.get("on"))
        self.check_permissions(path, doc.get("permissions"))
        jobs = doc.get("jobs")
        if not isinstance(jobs, dict) or not jobs:
            self.bad(path, "`jobs` must be a non-empty mapping")
            return
        for jid, job in jobs.items():
            self.check_job(path, jid, job, jobs)
        self.check_cycles(path, jobs)
        self.check_expressions(path, text)

    def check_on(self, path, on):
        if on is None:
            self.bad(path, "`on` is required")
            return
        names = [on] if isinstance(on, str) else list(on) if isinstance(on, (list, dict)) else []
        if not names:
            self.bad(path, "`on` must name events")
        for e in names:
            if e not in EVENTS:
                self.bad(path, "unknown event %r in `on`" % e)

    def check_permissions(self, where, perms):
        if perms is None or perms in ("read-all", "write-all", {}):
            return
        if not isinstance(perms, dict):
            self.bad(where, "`permissions` must be read-all, write-all or a mapping")
            return
        for scope, level in perms.items():
            if scope not in PERMISSION_SCOPES:
                self.bad(where, "unknown permission scope %r" % scope)
            if level not in ("read", "write", "none"):
                self.bad(where, "permission %s: %r is not read, write or none" % (scope, level))

    def check_job(self, path, jid, job, jobs):
        where = "%s: job %s" % (path, jid)
        if not ID_RE.match(str(jid)):
            self.bad(where, "job ids are letters, digits, _ and -, not starting with a digit")
        if not isinstance(job, dict):
            self.bad(where, "a job is a mapping")
            return
        for k in job:
            if k not in JOB_KEYS:
                self.bad(where, "unknown key %r" % k)
        if "runs-on" not in job:
            self.bad(where, "`runs-on` is required")
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        for n in needs:
            if n not in jobs:
                self.bad(where, "needs %r, which is not a job of this workflow" % n)
        self.check_permissions(where, job.get("permissions"))
        env = job.get("environment")
        if env is not None and not isinstance(env, str) and not (
                isinstance(env, dict) and "name" in env and set(env) <= {"name", "url"}):
            self.bad(where, "`environment` is a name or {name, url}")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            self.bad(where, "`steps` must be a non-empty list")
            return
        seen_ids = set()
        for i, step in enumerate(steps):
            sw = "%s step %d" % (where, i + 1)
            if not isinstance(step, dict):
                self.bad(sw, "a step is a mapping")
                continue
            for k in step:
                if k not in STEP_KEYS:
                    self.bad(sw, "unknown key %r" % k)
            if ("uses" in step) == ("run" in step):
                self.bad(sw, "a step has exactly one of `uses` and `run`")
            if "uses" in step and not USES_RE.match(str(step["uses"])):
                self.bad(sw, "`uses: %s` is not owner/repo@ref, ./path or docker://image"
                         % step["uses"])
            if "with" in step and "uses" not in step:
                self.bad(sw, "`with` needs `uses`")
            if "id" in step:
                if not ID_RE.match(str(step["id"])):
                    self.bad(sw, "bad step id %r" % step["id"])
                if step["id"] in seen_ids:
                    self.bad(sw, "step id %r used twice" % step["id"])
                seen_ids.add(step["id"])
            # steps.X.outputs must name a step before this one.
            for ref in re.findall(r"steps\.([A-Za-z0-9_-]+)\.", yaml.safe_dump(step)):
                if ref not in seen_ids - ({step.get("id")} if "id" in step else set()) \
                        and ref != step.get("id"):
                    self.bad(sw, "refers to step %r, which is not an earlier step" % ref)
            if "run" in step:
                self.check_ferry_commands(sw, str(step["run"]))
        # needs.X.outputs.Y: X in needs, Y an output of X.
        for m in re.finditer(r"needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)",
                             yaml.safe_dump(job)):
            other, out = m.group(1), m.group(2)
            if other not in needs:
                self.bad(where, "uses needs.%s but does not need %s" % (other, other))
            elif out not in (jobs.get(other) or {}).get("outputs", {}):
                self.bad(where, "job %s has no output %r" % (other, out))
        for m in re.finditer(r"steps\.([A-Za-z0-9_-]+)\.outputs",
                             yaml.safe_dump(job.get("outputs", {}))):
            if m.group(1) not in seen_ids:
                self.bad(where, "output reads step %r, which is not a step of this job"
                         % m.group(1))

    def check_cycles(self, path, jobs):
        state = {}

        def visit(j, stack):
            if state.get(j) == 1:
                self.bad(path, "jobs need each other in a cycle: %s" % " -> ".join(stack + [j]))
                return
            if state.get(j) == 2 or j not in jobs:
                return
            state[j] = 1
            needs = (jobs[j] or {}).get("needs", []) if isinstance(jobs[j], dict) else []
            for n in [needs] if isinstance(needs, str) else needs:
                visit(n, stack + [j])
            state[j] = 2

        for j in jobs:
            visit(j, [])

    def check_expressions(self, path, text):
        if text.count("${{") != len(EXPR_RE.findall(text)):
            self.bad(path, "an expression `${{` is not closed with `}}`")
        for e in EXPR_RE.findall(text):
            for m in re.finditer(r"\bsecrets\.([A-Za-z0-9_]+)", e):
                if not re.match(r"^[A-Z_][A-Z0-9_]*$", m.group(1)):
                    self.bad(path, "secret name %r is not UPPER_CASE" % m.group(1))
            if e.count("(") != e.count(")"):
                self.bad(path, "unbalanced parentheses in ${{%s}}" % e)

    # --- ferry's own checks ------------------------------------------------------------
    def ferry_help(self, verbs):
        key = tuple(verbs)
        if key not in self.help_cache:
            p = subprocess.run([self.ferry] + verbs + ["--help"], capture_output=True,
                               text=True, timeout=30)
            self.help_cache[key] = (p.returncode, p.stdout + p.stderr)
        return self.help_cache[key]

    def check_ferry_commands(self, where, script):
        # Join folded lines; one shell command per line or per `&&`/`||`/`;`.
        for line in script.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|\||;|\|", line):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    continue
                if not words or words[0] != "ferry":
                    continue
                self.check_ferry_words(where, words[1:])

    def check_ferry_words(self, where, words):
        verbs = []
        for w in words:
            if w.startswith("-"):
                break
            code, text = self.ferry_help(verbs + [w])
            # The help of a real subcommand names it in its usage line.
            usage = re.search(r"Usage: \S*ferry((?: [a-z][a-z0-9-]*)*) ", text)
            if code != 0 or not usage or usage.group(1).split() != verbs + [w]:
                break
            verbs.append(w)
            # A subcommand's positional arguments follow; stop at the first that is not one.
            _, text = self.ferry_help(verbs)
            if "SUBCOMMAND" not in text and "Subcommands:" not in text:
                break
        if not verbs:
            self.bad(where, "`ferry %s` is not a ferry verb" % (words[0] if words else ""))
            return
        _, text = self.ferry_help(verbs)
        for w in words:
            if w.startswith("--"):
                flag = w.split("=", 1)[0]
                if not re.search(r"(^|[\s,])" + re.escape(flag) + r"\b", text):
                    self.bad(where, "`ferry %s` has no flag %s" % (" ".join(verbs), flag))

    def check_readme_command(self, ci_path):
        with open(os.path.join(self.root, "README.md")) as f:
            readme = f.read()
        blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
        test_cmds = [b.strip() for b in blocks if "test" in b]
        with open(ci_path) as f:
            ci = f.read()
        if not test_cmds or not any(c in ci for c in test_cmds):
            self.bad(ci_path, "does not run the README's test command (%s)" % test_cmds)


BROKEN = {
    "unknown key": "on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n",
    "uses and run": "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n"
                    "      - {uses: actions/checkout@v4, run: ls}\n",
    "needs": "on: push\njobs:\n  a:\n    runs-on: x\n    needs: b\n    steps: [{run: ls}]\n",
    "cycle": "on: push\njobs:\n  a: {runs-on: x, needs: b, steps: [{run: ls}]}\n"
             "  b: {runs-on: x, needs: a, steps: [{run: ls}]}\n",
    "no output": "on: push\njobs:\n  a: {runs-on: x, steps: [{run: ls}]}\n"
                 "  b: {runs-on: x, needs: a, steps: [{run: 'echo ${{ needs.a.outputs.v }}'}]}\n",
    "ferry verb": "on: push\njobs:\n  a: {runs-on: x, steps: [{run: 'ferry deploi web v1'}]}\n",
    "ferry flag": "on: push\njobs:\n  a: {runs-on: x, steps: [{run: 'ferry deploy web v1 --env"
                  " prod --wiat'}]}\n",
    "expression": "on: push\njobs:\n  a: {runs-on: x, steps: [{run: 'echo ${{ github.sha'}]}\n",
    "event": "on: pushh\njobs:\n  a: {runs-on: x, steps: [{run: ls}]}\n",
    "permission": "on: push\npermissions: {contents: admin}\njobs:\n"
                  "  a: {runs-on: x, steps: [{run: ls}]}\n",
}
GOOD = ("on: push\njobs:\n  a:\n    runs-on: x\n    outputs: {v: '${{ steps.s.outputs.v }}'}\n"
        "    steps:\n      - {id: s, run: 'ferry deploy web v1 --env prod --wait --timeout 5m'}\n"
        "  b: {runs-on: x, needs: a, steps: [{run: 'echo ${{ needs.a.outputs.v }}'}]}\n")


def self_test(ferry):
    failures = []
    for name, text in BROKEN.items():
        c = Checker(ferry, ".")
        c.check_file("<%s>" % name, text)
        if not c.problems:
            failures.append("the checker accepted a workflow with a bad %s" % name)
    c = Checker(ferry, ".")
    c.check_file("<good>", GOOD)
    failures += ["the checker refused a good workflow: " + p for p in c.problems]
    for f in failures:
        print(f)
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "--self-test":
        return self_test(argv[1])
    if len(argv) < 3:
        print(__doc__)
        return 2
    c = Checker(argv[0], argv[1])
    for path in argv[2:]:
        c.check_file(path)
        if os.path.basename(os.path.dirname(path)) == "workflows" and \
                os.path.basename(path) == "ci.yml":
            c.check_readme_command(path)
    for p in c.problems:
        print(p)
    if not c.problems:
        print("%d workflow file(s) pass" % (len(argv) - 2))
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
