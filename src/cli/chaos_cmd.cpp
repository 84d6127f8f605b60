// ferry chaos APP --env E (--kill-instance | --latency 200ms --share 10% | --errors 5%)
// [--for 2m] [--wait]; ferry chaos APP --env E --stop | --report: game days (docs/cli.md,
// docs/runbook.md "Game days").
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/http_types.h"
#include "config/values.h"

namespace ferry::cli {

namespace {

int64_t chaos_duration_arg(const std::string& text, const char* flag) {
  auto r = config::parse_duration(text);
  if (auto* e = std::get_if<std::string>(&r)) fail(std::string(flag) + ": " + *e, 2);
  return std::get<int64_t>(r);
}

double chaos_share_arg(const std::string& text, const char* flag) {
  auto r = config::parse_fraction(text);
  if (auto* e = std::get_if<std::string>(&r)) fail(std::string(flag) + ": " + *e, 2);
  double v = std::get<double>(r);
  if (v <= 0) fail(std::string(flag) + ": the share must be above 0%", 2);
  return v;
}

std::string chaos_pct(double v) {
  return fmt::format("{:.2f}%", v * 100);
}

void print_report(const Json& e) {
  std::cout << fmt::format("experiment {} on {} in {}: {} ({})\n", e.value("id", ""),
                           e.value("app", ""), e.value("env", ""), e.value("kind", ""),
                           e.value("state", ""));
  if (e.contains("error")) std::cout << "  error: " << e.value("error", "") << "\n";
  std::cout << "  from " << local_time(e.value("started_at_ms", int64_t{0})) << " to "
            << local_time(e.value("ended_at_ms", int64_t{0}) ? e.value("ended_at_ms", int64_t{0})
                                                             : e.value("ends_at_ms", int64_t{0}))
            << (e.value("state", "") == "running" ? " (running)" : "") << "\n";
  if (!e.contains("report")) return;
  const Json& r = e["report"];
  const Json did = r.value("ferry_did", Json::object());
  const Json saw = r.value("clients_saw", Json::object());
  std::cout << "  what ferry did:\n";
  if (did.contains("killed"))
    std::cout << "    killed instance " << did["killed"].value("instance", "") << " on agent "
              << did["killed"].value("agent", "") << "\n";
  std::cout << "    instance restarts: " << did.value("instance_restarts", 0) << "\n";
  for (const auto& x : did.value("restarts", Json::array()))
    std::cout << "      " << x.value("instance", "") << " on " << x.value("agent", "") << ": "
              << x.value("restarts", 0) << "\n";
  std::cout << "    rollbacks: " << did.value("rollbacks", 0) << "\n";
  for (const auto& d : did.value("deployments", Json::array()))
    std::cout << "      deployment " << d.value("id", "") << " (" << d.value("release", "")
              << "): " << d.value("state", "")
              << (d.value("rolled_back", false) ? ", rolled back" : "") << "\n";
  const Json alerts = did.value("alerts", Json::array());
  std::cout << "    alerts: " << alerts.size() << "\n";
  for (const auto& a : alerts)
    std::cout << "      " << a.value("alert", "") << " (deployment " << a.value("deployment", "")
              << ", " << local_time(a.value("at_ms", int64_t{0})) << ")\n";
  std::cout << "  what clients saw:\n";
  std::cout << fmt::format("    requests {}, 5xx {} ({}), of which injected {}\n",
                           saw.value("requests", uint64_t{0}), saw.value("errors_5xx", uint64_t{0}),
                           chaos_pct(saw.value("error_rate", 0.0)),
                           saw.value("injected_errors", uint64_t{0}));
  if (saw.value("delayed", uint64_t{0}) > 0)
    std::cout << fmt::format("    delayed {} requests by {} ms\n",
                             saw.value("delayed", uint64_t{0}), saw.value("injected_delay_ms", 0));
  if (saw.value("upstream_errors", uint64_t{0}) > 0)
    std::cout << "    upstream errors (connect failures, resets): "
              << saw.value("upstream_errors", uint64_t{0}) << "\n";
  auto ms = [](double v) { return v < 0 ? std::string("-") : fmt::format("<= {} ms", v); };
  std::cout << "    latency of proxied requests: p50 " << ms(saw.value("latency_p50_ms", -1.0))
            << ", p99 " << ms(saw.value("latency_p99_ms", -1.0))
            << (saw.value("delayed", uint64_t{0}) > 0 ? " (injected delay not included)" : "")
            << "\n";
  if (saw.value("counters_reset", false))
    std::cout << "    note: an agent restarted during the experiment; its counts start afresh\n";
  for (const auto& a : r.value("agents_unreachable", Json::array()))
    std::cout << "    agent " << a.value("agent", "") << " did not answer: " << a.value("error", "")
              << "\n";
}

// The newest experiment of the app in the environment (running ones when `running`).
std::string latest_experiment(GlobalOptions& g, const std::string& app, const std::string& env,
                              bool running) {
  Json l = api_call(g, "GET",
                    "/api/v1/chaos?app=" + url_encode(app) + "&env=" + url_encode(env) +
                        (running ? "&running=true" : ""));
  const Json list = l.value("experiments", Json::array());
  if (list.empty())
    fail(std::string(running ? "no experiment is running" : "no experiment was run") + " on " +
             app + " in " + env,
         1);
  return list.front().value("id", "");
}

}  // namespace

void register_chaos_commands(CLI::App& app, GlobalOptions& g) {
  struct Args {
    std::string app, env, latency, share, errors, duration, instance;
    bool kill = false, stop = false, report = false, wait = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "chaos", "game day: kill an instance or inject router latency/errors for a bounded time");
  cmd->add_option("app", a->app)->required();
  cmd->add_option("--env,-e", a->env, "environment (must say `chaos: allowed`)")->required();
  auto* kill =
      cmd->add_flag("--kill-instance", a->kill, "kill one instance (restarted as after a crash)");
  cmd->add_option("--instance", a->instance, "the instance to kill (default: any ready one)")
      ->needs(kill);
  auto* lat = cmd->add_option("--latency", a->latency, "delay a share of requests by this (200ms)");
  auto* share = cmd->add_option("--share", a->share, "the share of requests delayed (10%)");
  lat->needs(share);
  share->needs(lat);
  auto* err = cmd->add_option("--errors", a->errors, "answer this share of requests 503 (5%)");
  cmd->add_option("--for", a->duration, "how long (default 5m; 1m watch after a kill; max 1h)");
  cmd->add_flag("--wait", a->wait, "wait for the end and print the report");
  auto* stop = cmd->add_flag("--stop", a->stop, "stop the running experiment now");
  auto* report = cmd->add_flag("--report", a->report, "the latest experiment and its report");
  kill->excludes(lat)->excludes(err)->excludes(stop)->excludes(report);
  lat->excludes(err)->excludes(stop)->excludes(report);
  err->excludes(stop)->excludes(report);
  stop->excludes(report);
  cmd->callback([a, &g] {
    if (a->stop || a->report) {
      const std::string id = latest_experiment(g, a->app, a->env, a->stop);
      Json e = a->stop ? api_call(g, "POST", "/api/v1/chaos/" + url_encode(id) + "/stop")
                       : api_call(g, "GET", "/api/v1/chaos/" + url_encode(id));
      if (g.json)
        std::cout << e.dump(2) << "\n";
      else
        print_report(e);
      return;
    }
    Json body{{"app", a->app}, {"env", a->env}};
    if (a->kill) {
      body["kind"] = "kill_instance";
      body["instance"] = a->instance;
    } else if (!a->latency.empty()) {
      body["kind"] = "latency";
      body["latency_ms"] = chaos_duration_arg(a->latency, "--latency");
      body["share"] = chaos_share_arg(a->share, "--share");
    } else if (!a->errors.empty()) {
      body["kind"] = "errors";
      body["share"] = chaos_share_arg(a->errors, "--errors");
    } else {
      fail("say what to do: --kill-instance, --latency D --share P, --errors P, --stop or --report",
           2);
    }
    if (!a->duration.empty()) body["duration_ms"] = chaos_duration_arg(a->duration, "--for");
    Json e = api_call(g, "POST", "/api/v1/chaos", &body);
    const std::string id = e.value("id", "");
    if (!a->wait) {
      if (g.json) {
        std::cout << e.dump(2) << "\n";
        return;
      }
      std::cout << "experiment " << id << " started on " << a->app << " in " << a->env << ", ends "
                << local_time(e.value("ends_at_ms", int64_t{0})) << "\n";
      if (!e.value("killed_instance", "").empty())
        std::cout << "killed instance " << e.value("killed_instance", "") << " on agent "
                  << e.value("killed_on", "") << "\n";
      std::cout << "stop it: ferry chaos " << a->app << " --env " << a->env
                << " --stop; its report: ferry chaos " << a->app << " --env " << a->env
                << " --report\n";
      return;
    }
    for (;;) {
      e = api_call(g, "GET", "/api/v1/chaos/" + url_encode(id));
      const std::string state = e.value("state", "");
      if (state != "running" && state != "ending") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (g.json)
      std::cout << e.dump(2) << "\n";
    else
      print_report(e);
  });
}

}  // namespace ferry::cli
