// ferry slo APP --env E: an app's SLO in an environment (docs/slo.md): attainment, error
// budget left, burn rates and alerts, the release gate, and the deployments that spent it.
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <limits>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/http_types.h"

namespace ferry::cli {

namespace {

// A figure of the answer: `def` when the field is missing, and "-" in print when it is not a
// number (a ratio of nothing is sent as null: NaN has no JSON form).
double num(const Json& o, const char* key, double def) {
  if (!o.contains(key)) return def;
  const Json& v = o[key];
  return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

std::string pct(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3f}%", v * 100);
}

std::string times(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.2f}x", v);
}

uint64_t count(const Json& o, const char* key) {
  return o.contains(key) && o[key].is_number_unsigned() ? o[key].get<uint64_t>() : 0;
}

void print_slo(const Json& s) {
  std::cout << fmt::format("SLO of {} in {} (window {}h)\n", s.value("app", ""), s.value("env", ""),
                           static_cast<int64_t>(num(s, "window_ms", 0)) / 3'600'000);
  for (const auto& o : s.value("objectives", Json::array())) {
    std::string what = o.value("objective", "");
    if (o.contains("threshold_ms"))
      what += fmt::format(" (under {} ms)", num(o, "threshold_ms", 0.0));
    std::cout << fmt::format("  {:<28} target {:<9} attained {:<9} budget left {}\n", what,
                             pct(num(o, "target", 0.0)), pct(num(o, "attainment", 1.0)),
                             pct(num(o, "budget_remaining", 1.0)));
    std::string burns;
    const Json burn = o.contains("burn") && o["burn"].is_object() ? o["burn"] : Json::object();
    for (const auto& [w, v] : burn.items())
      burns += fmt::format("  {} {}", w, times(v.is_number() ? v.get<double>() : NAN));
    std::cout << "    burn:" << burns << "   (" << count(o, "requests") << " requests, "
              << count(o, "bad") << " bad)\n";
    const Json alerts =
        o.contains("alerts") && o["alerts"].is_object() ? o["alerts"] : Json::object();
    for (const auto& [name, firing] : alerts.items())
      if (firing.is_boolean() && firing.get<bool>())
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
                             pct(num(d, "budget_spent", 0.0)),
                             pct(num(d, "budget_spent_after", 0.0)),
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
