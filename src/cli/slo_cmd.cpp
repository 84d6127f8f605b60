// ferry slo APP --env E: an app's SLO in an environment (docs/slo.md): attainment, error
// budget left, burn rates and alerts, the release gate, and the deployments that spent it.
#include <fmt/format.h>

#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/http_types.h"

namespace ferry::cli {

namespace {

std::string pct(double v) {
  return fmt::format("{:.3f}%", v * 100);
}

void print_slo(const Json& s) {
  std::cout << fmt::format("SLO of {} in {} (window {}h)\n", s.value("app", ""), s.value("env", ""),
                           s.value("window_ms", int64_t{0}) / 3'600'000);
  for (const auto& o : s.value("objectives", Json::array())) {
    std::string what = o.value("objective", "");
    if (o.contains("threshold_ms"))
      what += fmt::format(" (under {} ms)", o.value("threshold_ms", 0.0));
    std::cout << fmt::format("  {:<28} target {:<9} attained {:<9} budget left {}\n", what,
                             pct(o.value("target", 0.0)), pct(o.value("attainment", 1.0)),
                             pct(o.value("budget_remaining", 1.0)));
    std::string burns;
    for (const auto& [w, v] : o.value("burn", Json::object()).items())
      burns += fmt::format("  {} {:.2f}x", w, v.get<double>());
    std::cout << "    burn:" << burns << "   (" << o.value("requests", uint64_t{0}) << " requests, "
              << o.value("bad", uint64_t{0}) << " bad)\n";
    for (const auto& [name, firing] : o.value("alerts", Json::object()).items())
      if (firing.get<bool>())
        std::cout << "    ALERT " << name
                  << (name == "page" ? ": burning >14.4x over 1h and 5m\n"
                                     : ": burning >6x over 6h and 30m\n");
  }
  if (s.contains("gate")) {
    const Json& g = s["gate"];
    std::cout << "  gate: " << (g.value("open", true) ? "open" : "closed: " + g.value("reason", ""))
              << "\n";
  }
  const Json deps = s.value("deployments", Json::array());
  if (!deps.empty()) std::cout << "  budget spent by deployments (while running + hour after):\n";
  for (const auto& d : deps)
    std::cout << fmt::format("    {:<10} {:<10} {:<12} {} + {}{}\n", d.value("id", ""),
                             d.value("release", ""), d.value("state", ""),
                             pct(d.value("budget_spent", 0.0)),
                             pct(d.value("budget_spent_after", 0.0)),
                             d.value("after_complete", false) ? "" : " (hour not over)");
}

}  // namespace

void register_slo_commands(CLI::App& app, GlobalOptions& g) {
  struct Args {
    std::string app, env;
    int hours = 6;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("slo", "an app's SLO: attainment, error budget, burn rates");
  cmd->add_option("app", a->app)->required();
  cmd->add_option("--env,-e", a->env, "environment")->required();
  cmd->add_option("--hours", a->hours, "hours of burn chart in --json (1-168)")
      ->check(CLI::Range(1, 168));
  cmd->callback([a, &g] {
    Json r = api_call(g, "GET",
                      "/api/v1/slo/" + url_encode(a->app) + "/" + url_encode(a->env) +
                          "?hours=" + std::to_string(a->hours));
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    print_slo(r);
  });
}

}  // namespace ferry::cli
