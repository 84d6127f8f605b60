// The SLO gauges of /metrics (docs/slo.md, docs/observability.md): attainment, budget left
// and burn rates of every app's SLO in every environment, computed from the stored
// buckets at scrape time (one read per app and environment with an SLO).
#include "server/control_plane.h"
#include "server/server_metrics.h"

namespace ferry {

namespace {

struct SloRow {
  std::string app, env;
  slo::Status status;
};

std::vector<SloRow> slo_rows_now(ControlPlane& cp) {
  std::vector<SloRow> rows;
  auto config = cp.config();
  for (const auto& env : config->environments)
    for (const auto& app : config->apps) {
      if (!config->app_for_env(app, env.name).slo) continue;
      auto st = cp.slo().status(app.name, env.name);
      if (st.ok()) rows.push_back({app.name, env.name, std::move(*st)});
    }
  return rows;
}

}  // namespace

void ServerMetrics::add_slo_callbacks() {
  (void)registry_.callback(
      "ferry_slo_attainment", "Share of good requests over the SLO window",
      metrics::MetricType::kGauge, {"app", "env", "objective"}, [this] {
        std::vector<metrics::Sample> out;
        for (const auto& r : slo_rows_now(cp_))
          for (const auto& o : r.status.objectives)
            out.push_back({{r.app, r.env, std::string(slo::to_string(o.objective))}, o.attainment});
        return out;
      });
  (void)registry_.callback(
      "ferry_slo_target", "The SLO's target share of good requests", metrics::MetricType::kGauge,
      {"app", "env", "objective"}, [this] {
        std::vector<metrics::Sample> out;
        for (const auto& r : slo_rows_now(cp_))
          for (const auto& o : r.status.objectives)
            out.push_back({{r.app, r.env, std::string(slo::to_string(o.objective))}, o.target});
        return out;
      });
  (void)registry_.callback(
      "ferry_slo_error_budget_remaining",
      "Share of the error budget left over the SLO window (1 untouched, 0 spent, below 0 "
      "overspent)",
      metrics::MetricType::kGauge, {"app", "env", "objective"}, [this] {
        std::vector<metrics::Sample> out;
        for (const auto& r : slo_rows_now(cp_))
          for (const auto& o : r.status.objectives)
            out.push_back(
                {{r.app, r.env, std::string(slo::to_string(o.objective))}, o.budget_remaining});
        return out;
      });
  (void)registry_.callback(
      "ferry_slo_burn_rate",
      "Error budget burn rate over a window (1 spends the budget exactly over the SLO window)",
      metrics::MetricType::kGauge, {"app", "env", "objective", "window"}, [this] {
        std::vector<metrics::Sample> out;
        for (const auto& r : slo_rows_now(cp_))
          for (const auto& o : r.status.objectives)
            for (const auto& [w, v] : o.burn)
              out.push_back({{r.app, r.env, std::string(slo::to_string(o.objective)), w}, v});
        return out;
      });
}

}  // namespace ferry
