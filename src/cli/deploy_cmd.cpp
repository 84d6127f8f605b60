// Verbs of the deployment flow: release create, deploy, status, pause, resume,
// promote, abort, rollback, history, apps.
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "cli/client.h"
#include "common/http_types.h"
#include "config/values.h"
#include "slo/answer_text.h"

namespace ferry::cli {

namespace {

bool final_state(const std::string& s) {
  return s == "succeeded" || s == "failed" || s == "rolled_back" || s == "aborted";
}

void print_deployment(const Json& d) {
  std::cout << fmt::format("deployment {}  {}@{} → {}  [{}]\n", d.value("id", ""),
                           d.value("app", ""), d.value("release", ""), d.value("env", ""),
                           d.value("state", ""));
  if (!d.value("previous_release", "").empty())
    std::cout << "  stable: " << d.value("previous_release", "")
              << "   strategy: " << d.value("strategy", "") << "\n";
  if (!d.value("reason", "").empty()) std::cout << "  reason: " << d.value("reason", "") << "\n";
  const int cur = d.value("current_step", -1);
  const std::string step_state = d.value("step_state", "");
  int i = 0;
  for (const auto& s : d.value("plan", Json::array())) {
    std::string mark = "  ";
    if (i < cur || (i == cur && step_state == "done") || d.value("state", "") == "succeeded")
      mark = "✓ ";
    else if (i == cur)
      mark = final_state(d.value("state", "")) ? "✗ " : "▶ ";
    std::cout << fmt::format("  {}{:>2}. {}\n", mark, i + 1, s.value("description", ""));
    ++i;
  }
}

// Per host of the deployment's environment: reachable or not, generation (and whether it
// is behind the desired one), weights, and each instance with its state.
void print_hosts(const GlobalOptions& g, const std::string& app, const std::string& env) {
  Json st = api_call(g, "GET",
                     "/api/v1/apps/" + url_encode(app) + "/envs/" + url_encode(env) + "/status");
  for (const auto& h : st.value("agents", Json::array())) {
    std::string head = fmt::format("  host {} ({})", h.value("agent", ""), h.value("address", ""));
    if (h.contains("error")) {
      std::cout << head << ": " << (h.value("reachable", true) ? "error" : "unreachable") << ": "
                << h.value("error", "") << "\n";
      continue;
    }
    std::string weights;
    // A named copy: items() of the temporary value() returns would outlive it in the loop.
    const Json host_weights = h.value("weights", Json::object());
    for (const auto& [rel, w] : host_weights.items())
      weights += (weights.empty() ? "" : " ") + rel + "=" + std::to_string(w.get<int>());
    std::cout << head << ": generation " << h.value("generation", int64_t{0})
              << (h.value("behind", false) ? " (behind)" : "") << ", weights "
              << (weights.empty() ? "-" : weights) << "\n";
    for (const auto& i : h.value("instances", Json::array()))
      std::cout << fmt::format("    {} {} {}\n", i.value("id", ""), i.value("release", ""),
                               i.value("state", ""));
    // The edge (docs/router.md, "Status and metrics"): only what needs attention, and the
    // state of an ACME certificate.
    const Json edge = h.value("edge", Json::object());
    if (std::string acme = edge.value("acme_state", ""); !acme.empty()) {
      std::string err = edge.value("acme_error", "");
      std::cout << "    certificate (acme): " << acme << (err.empty() ? "" : ": " + err) << "\n";
    }
    if (std::string err = edge.value("tls_error", ""); !err.empty())
      std::cout << "    certificate reload failing: " << err << "\n";
    if (uint64_t n = edge.value("access_log_dropped", uint64_t{0}); n > 0)
      std::cout << "    access log: " << n << " lines dropped\n";
  }
}

// Prints the deployment's events as they come until it ends; returns its final state.
std::string follow(const GlobalOptions& g, const std::string& id, bool quiet_plan = false) {
  int64_t after = 0;
  int64_t t0 = 0;
  std::string state;
  while (true) {
    Json d = api_call(g, "GET", "/api/v1/deployments/" + id + "?after=" + std::to_string(after));
    for (const auto& e : d["events"]) {
      after = e.value("seq", after);
      const int64_t t = e.value("time_ms", int64_t{0});
      if (t0 == 0) t0 = t;
      if (quiet_plan && e.value("type", "") == "created") continue;
      std::cout << fmt::format("  +{:7.3f}s  {:<16} {}\n", (t - t0) / 1000.0, e.value("type", ""),
                               e.value("message", ""))
                << std::flush;
    }
    state = d.value("state", "");
    if (final_state(state)) return state;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int exit_for(const std::string& state) {
  return state == "succeeded" ? 0 : 1;
}

// Exit codes of `ferry deploy --wait` (docs/cli.md), for pipelines to gate on.
constexpr int kWaitSucceeded = 0;
constexpr int kWaitError = 2;
constexpr int kWaitRolledBack = 3;
constexpr int kWaitRefused = 4;
constexpr int kWaitTimedOut = 5;

// Creates the deployment and waits for its end (or the timeout); returns the exit code.
// API errors (bad input, no permission, another deployment in flight) are kWaitError;
// the server being unreachable for a moment is retried until the timeout.
int deploy_and_wait(const GlobalOptions& g, const Json& body, int64_t timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto client = api_client(g);
  auto created = client.call("POST", "/api/v1/deployments", &body);
  if (!created.ok()) {
    std::cerr << "error: " << created.status().message() << "\n";
    return kWaitError;
  }
  const std::string id = created->value("id", "");
  if (!g.json) std::cout << "deployment " << id << " created; waiting\n" << std::flush;
  int64_t after = 0;
  bool gate_refused = false;
  Json d = *created;
  std::string last_error;
  while (true) {
    auto r = client.call(
        "GET", "/api/v1/deployments/" + url_encode(id) + "?after=" + std::to_string(after));
    if (r.ok()) {
      d = *r;
      last_error.clear();
      for (const auto& e : d["events"]) {
        after = e.value("seq", after);
        gate_refused |= e.value("type", "") == "gate_refused";
        if (!g.json)
          std::cout << fmt::format("  {:<16} {}\n", e.value("type", ""), e.value("message", ""))
                    << std::flush;
      }
      const std::string state = d.value("state", "");
      if (final_state(state)) {
        d.erase("events");
        if (g.json)
          std::cout << d.dump(2) << "\n";
        else
          std::cout << "deployment " << id << " " << state
                    << (d.value("reason", "").empty() ? "" : ": " + d.value("reason", "")) << "\n";
        if (state == "succeeded") return kWaitSucceeded;
        if (state == "failed" && gate_refused) return kWaitRefused;
        return kWaitRolledBack;  // rolled back, aborted, or failed before going live
      }
    } else if (r.status().code() == Code::kUnavailable ||
               r.status().code() == Code::kDeadlineExceeded) {
      last_error = r.status().message();  // the server restarting: try again
    } else {
      std::cerr << "error: " << r.status().message() << "\n";
      return kWaitError;
    }
    if (std::chrono::steady_clock::now() >= until) {
      std::cerr << "timed out after " << timeout_ms << " ms waiting for deployment " << id
                << " (still " << d.value("state", "?")
                << (last_error.empty() ? "" : "; last error: " + last_error)
                << "); it goes on: `ferry status " << id << "`\n";
      return kWaitTimedOut;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

void register_deploy_commands(CLI::App& app, GlobalOptions& g) {
  // release create
  struct ReleaseArgs {
    std::string app, version, git_sha, artifact, source, reason;
    std::vector<std::string> env;
    bool override_scan = false;
  };
  auto ra = std::make_shared<ReleaseArgs>();
  auto* release = app.add_subcommand("release", "releases of an app");
  release->require_subcommand(1);
  auto* rc = release->add_subcommand("create", "record an immutable release (runs the scan gate)");
  rc->add_option("app", ra->app)->required();
  rc->add_option("version", ra->version)->required();
  rc->add_option("--git-sha", ra->git_sha, "commit the release was built from");
  rc->add_option("--artifact", ra->artifact, "binary path or image reference");
  rc->add_option("--source", ra->source, "source tree to scan for secrets (on the server host)");
  rc->add_option("--set-env", ra->env, "KEY=VALUE added to the release's environment (repeat)");
  rc->add_flag("--override-scan", ra->override_scan,
               "accept scan findings (admin, needs --reason)");
  rc->add_option("--reason", ra->reason, "why the override is acceptable (audited)");
  rc->callback([ra, &g] {
    Json env = Json::object();
    for (const auto& kv : ra->env) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) fail("--set-env '" + kv + "' must be KEY=VALUE");
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    Json body{{"app", ra->app},
              {"version", ra->version},
              {"git_sha", ra->git_sha},
              {"artifact", ra->artifact},
              {"source", ra->source},
              {"env", env},
              {"override_scan", ra->override_scan},
              {"reason", ra->reason}};
    Json r = api_call(g, "POST", "/api/v1/releases", &body);
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    std::cout << "release " << ra->app << "@" << ra->version
              << " created (scan: " << r.value("scan_status", "") << ")\n";
  });
  auto* rs = release->add_subcommand("show", "one release: scan result and the env it adds");
  rs->add_option("app", ra->app)->required();
  rs->add_option("version", ra->version)->required();
  rs->callback([ra, &g] {
    Json r = api_call(
        g, "GET", "/api/v1/apps/" + url_encode(ra->app) + "/releases/" + url_encode(ra->version));
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    std::cout << "release " << r.value("app", "") << "@" << r.value("version", "") << "\n"
              << "  git sha:    " << r.value("git_sha", "") << "\n"
              << "  artifact:   " << r.value("artifact", "") << "\n"
              << "  scan:       " << r.value("scan_status", "") << "\n"
              << "  created by: " << r.value("created_by", "") << " at "
              << local_time(r.value("created_at_ms", int64_t{0})) << "\n";
    const Json env = r.value("env", Json::object());
    std::cout << "  env set by the release:" << (env.empty() ? " none" : "") << "\n";
    for (auto it = env.begin(); it != env.end(); ++it)
      std::cout << "    " << it.key() << "="
                << (it.value().is_string() ? it.value().get<std::string>() : it.value().dump())
                << "\n";
  });
  auto* rl = release->add_subcommand("list", "list releases of an app, newest first");
  rl->add_option("app", ra->app)->required();
  rl->callback([ra, &g] {
    Json r = api_call(g, "GET", "/api/v1/apps/" + url_encode(ra->app) + "/releases");
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    for (const auto& rel : r["releases"])
      std::cout << fmt::format("{:<16} {:<12} scan:{:<12} {}\n", rel.value("version", ""),
                               rel.value("git_sha", "").substr(0, 10), rel.value("scan_status", ""),
                               local_time(rel.value("created_at_ms", int64_t{0})));
  });

  // deploy
  struct DeployArgs {
    std::string app, release, env, id, reason;
    bool detach = false;
    bool watch = false;
    bool override_scan = false;
    bool wait = false;
    std::string timeout;
    bool with_strategy = false;
  };
  auto da = std::make_shared<DeployArgs>();
  auto* deploy = app.add_subcommand("deploy", "deploy a release to an environment");
  deploy->add_option("app", da->app)->required();
  deploy->add_option("release", da->release)->required();
  deploy->add_option("--env,-e", da->env, "environment")->required();
  deploy->add_flag("--detach,-d", da->detach, "return once created instead of following it");
  deploy->add_flag("--override-scan", da->override_scan,
                   "deploy a release without a clean secret scan (admin, needs --reason)");
  deploy->add_option("--reason", da->reason, "why the scan override is acceptable (audited)");
  auto* wait_flag = deploy->add_flag(
      "--wait", da->wait,
      "wait for the end; exit 0 succeeded, 3 rolled back, 4 refused by a gate, 5 timed out, "
      "2 error");
  deploy->add_option("--timeout", da->timeout, "with --wait: stop waiting after this long (30m)")
      ->needs(wait_flag);
  deploy->callback([da, &g] {
    Json body{{"app", da->app}, {"env", da->env}, {"release", da->release}};
    if (da->override_scan) {
      body["override_scan"] = true;
      body["reason"] = da->reason;
    }
    if (da->wait) {
      if (da->detach) fail("--wait and --detach exclude each other");
      int64_t timeout_ms = 30 * 60'000;
      if (!da->timeout.empty()) {
        auto t = config::parse_duration(da->timeout);
        if (auto* e = std::get_if<std::string>(&t)) fail("--timeout: " + *e);
        timeout_ms = std::get<int64_t>(t);
        if (timeout_ms <= 0 || timeout_ms > 7 * 24 * 3'600'000LL)
          fail("--timeout " + da->timeout + " must be between 1ms and 7d");
      }
      const int code = deploy_and_wait(g, body, timeout_ms);
      if (code != 0) throw CLI::RuntimeError(code);
      return;
    }
    Json d = api_call(g, "POST", "/api/v1/deployments", &body);
    if (g.json && da->detach) {
      std::cout << d.dump(2) << "\n";
      return;
    }
    print_deployment(d);
    if (da->detach) return;
    const std::string state = follow(g, d.value("id", ""), true);
    std::cout << "deployment " << d.value("id", "") << " " << state << "\n";
    if (exit_for(state) != 0) throw CLI::RuntimeError(1);
  });

  auto* status = app.add_subcommand("status", "show a deployment (or the latest of an app)");
  status->add_option("target", da->id, "deployment id, or app name")->required();
  status->add_option("--env,-e", da->env, "environment (with an app name)");
  status->add_flag("--watch,-w", da->watch, "follow it until it ends");
  status->callback([da, &g] {
    std::string id = da->id;
    if (!id.starts_with("d-")) {
      Json list = api_call(g, "GET",
                           "/api/v1/deployments?limit=1&app=" + url_encode(id) +
                               (da->env.empty() ? "" : "&env=" + url_encode(da->env)));
      if (list["deployments"].empty()) fail("no deployment of " + id + " yet", 1);
      id = list["deployments"][0].value("id", "");
    }
    Json d = api_call(g, "GET", "/api/v1/deployments/" + id);
    if (g.json) {
      std::cout << d.dump(2) << "\n";
      return;
    }
    print_deployment(d);
    print_hosts(g, d.value("app", ""), d.value("env", ""));
    if (da->watch && !final_state(d.value("state", ""))) {
      const std::string state = follow(g, id);
      std::cout << "deployment " << id << " " << state << "\n";
    }
  });

  for (const char* verb : {"pause", "resume", "promote", "abort"}) {
    auto* c = app.add_subcommand(verb, std::string(verb) + " a deployment in progress");
    c->add_option("id", da->id, "deployment id")->required();
    c->callback([da, &g, v = std::string(verb)] {
      api_call(g, "POST", "/api/v1/deployments/" + url_encode(da->id) + "/" + v);
      std::cout << v << " sent to " << da->id << "\n";
    });
  }

  auto* rb = app.add_subcommand("rollback", "return an environment to an earlier release");
  rb->add_option("app", da->app)->required();
  rb->add_option("release", da->release, "release to return to (default: the one before)");
  rb->add_option("--env,-e", da->env, "environment")->required();
  rb->add_flag("--detach,-d", da->detach, "do not follow it");
  rb->add_flag("--with-strategy", da->with_strategy,
               "deploy the release through the app's strategy (with its analysis) instead of "
               "switching all traffic at once");
  rb->callback([da, &g] {
    Json body{{"release", da->release}, {"with_strategy", da->with_strategy}};
    Json d = api_call(
        g, "POST",
        "/api/v1/apps/" + url_encode(da->app) + "/envs/" + url_encode(da->env) + "/rollback",
        &body);
    std::cout << "rollback: deployment " << d.value("id", "") << " of " << d.value("release", "")
              << "\n";
    if (da->detach) return;
    const std::string state = follow(g, d.value("id", ""), true);
    std::cout << "deployment " << d.value("id", "") << " " << state << "\n";
  });

  auto* history = app.add_subcommand("history", "deployments of an app, newest first");
  history->add_option("app", da->app)->required();
  history->add_option("--env,-e", da->env, "environment");
  history->callback([da, &g] {
    Json r = api_call(g, "GET",
                      "/api/v1/deployments?limit=50&app=" + url_encode(da->app) +
                          (da->env.empty() ? "" : "&env=" + url_encode(da->env)));
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    for (const auto& d : r["deployments"])
      std::cout << fmt::format("{:<10} {:<19} {:<10} {:<8} {:<12} {:<12} {:<16} {}\n",
                               d.value("id", ""), local_time(d.value("created_at_ms", int64_t{0})),
                               d.value("env", ""), d.value("release", ""), d.value("state", ""),
                               d.value("requested_by", ""), slo::spend_text(d),
                               d.value("reason", ""));
  });

  auto* apps = app.add_subcommand("apps", "apps and the release each environment runs");
  apps->callback([&g] {
    Json r = api_call(g, "GET", "/api/v1/apps");
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    for (const auto& a : r["apps"]) {
      std::cout << a.value("name", "") << " (port " << a.value("port", 0) << ", "
                << a.value("strategy", "") << ")\n";
      for (auto it = a["environments"].begin(); it != a["environments"].end(); ++it)
        std::cout << fmt::format(
            "  {:<12} {}\n", it.key(),
            it.value()["release"].is_string() ? it.value()["release"].get<std::string>() : "-");
      for (const auto& d : a["active"])
        std::cout << fmt::format("  in progress: {} {} → {} [{}]\n", d.value("id", ""),
                                 d.value("release", ""), d.value("env", ""), d.value("state", ""));
    }
  });
}

}  // namespace ferry::cli
