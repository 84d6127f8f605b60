// ferry plan APP --env E: the steps a deployment would take and the gates before it,
// read from ferry.yaml alone (no server needed).
#include <iostream>

#include <fmt/format.h>

#include "cli/client.h"
#include "config/loader.h"
#include "core/plan.h"

namespace ferry::cli {

namespace {

std::string days_text(const std::vector<int>& days) {
  static const char* kNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  std::string out;
  for (int d : days) {
    if (!out.empty()) out += ",";
    if (d >= 0 && d < 7) out += kNames[d];
  }
  return out.empty() ? "every day" : out;
}

std::string hhmm(int minute) { return fmt::format("{:02}:{:02}", minute / 60, minute % 60); }

}  // namespace

void register_plan_commands(CLI::App& app, GlobalOptions& g) {
  struct PlanArgs {
    std::string config = "ferry.yaml";
    std::string app, env;
    bool first = false;
  };
  auto pa = std::make_shared<PlanArgs>();
  auto* plan = app.add_subcommand("plan", "print the steps and gates of a deployment");
  plan->add_option("app", pa->app)->required();
  plan->add_option("--env,-e", pa->env, "environment")->required();
  plan->add_option("--config,-c", pa->config, "ferry.yaml")->capture_default_str();
  plan->add_flag("--first", pa->first, "plan a first deployment (no stable release yet)");
  plan->callback([pa, &g] {
    auto cfg = load_config(pa->config);
    if (!cfg.ok()) fail(cfg.status().message());
    const AppSpec* spec = cfg->app(pa->app);
    if (!spec) fail("app '" + pa->app + "' is not in " + pa->config, 1);
    const EnvironmentSpec* env = cfg->environment(pa->env);
    if (!env) fail("environment '" + pa->env + "' is not in " + pa->config, 1);
    const AppSpec resolved = cfg->app_for_env(*spec, pa->env);
    const auto steps = plan_deployment(resolved, !pa->first);
    Json gates = Json::array();
    for (const auto& r : env->requires_envs)
      gates.push_back({{"gate", "lifecycle"}, {"text", "release must have succeeded in " + r}});
    if (env->approvals > 0)
      gates.push_back({{"gate", "approvals"},
                       {"text", fmt::format("{} approval(s), not by the requester, valid {} h",
                                            env->approvals, env->approval_ttl_ms / 3600'000)}});
    for (const auto& w : env->windows)
      gates.push_back({{"gate", "window"},
                       {"text", fmt::format("inside {} {}-{} {}", days_text(w.days),
                                            hhmm(w.start_minute), hhmm(w.end_minute),
                                            w.timezone)}});
    for (const auto& f : env->freezes)
      gates.push_back({{"gate", "freeze"},
                       {"text", fmt::format("not during freeze {} to {} ({}){}", f.from, f.to,
                                            f.timezone, f.reason.empty() ? "" : ": " + f.reason)}});
    gates.push_back({{"gate", "scan"}, {"text", "release passed the secret scan (or an audited admin override)"}});
    if (g.json) {
      std::cout << Json{{"app", pa->app}, {"env", pa->env},
                        {"strategy", strategy_name(resolved.strategy.kind)},
                        {"instances", resolved.instances}, {"gates", gates}, {"steps", steps}}
                       .dump(2)
                << "\n";
      return;
    }
    std::cout << fmt::format("plan: {} → {} ({} strategy, {} instance(s), port {})\n", pa->app,
                             pa->env, strategy_name(resolved.strategy.kind), resolved.instances,
                             resolved.port);
    std::cout << "gates:\n";
    for (const auto& gt : gates)
      std::cout << fmt::format("  - {:<10} {}\n", gt["gate"].get<std::string>(),
                               gt["text"].get<std::string>());
    std::cout << "steps:\n";
    int i = 0;
    for (const auto& s : steps) std::cout << fmt::format("  {:>2}. {}\n", ++i, s.describe());
    const auto& a = resolved.analysis;
    std::cout << fmt::format(
        "analysis: every {} ms; ≥ {} requests; error rate ≤ {:.2f}%; Mann-Whitney {} (confidence "
        "{}); on failure: traffic back to the stable release at once, new instances stopped\n",
        a.interval_ms, a.min_requests, a.max_error_rate * 100, a.mann_whitney ? "on" : "off",
        a.confidence);
  });
}

}  // namespace ferry::cli
