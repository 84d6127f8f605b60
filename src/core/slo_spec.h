// Service level objectives (docs/slo.md): what `apps.NAME.slo` and
// `environments.NAME.slo_gate` in ferry.yaml say. Plain values; the computation is
// src/slo/slo.h, the parsing src/config/parse_slo.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

// One app's objectives in one environment. At least one of the two objectives is set.
struct SloSpec {
  // Availability: the share of requests not answered 5xx (by the app, or by the router
  // when the upstream failed) must be at least availability_target (e.g. 0.999).
  std::optional<double> availability_target;
  // Requests to these paths count for neither good nor bad in availability (e.g. /healthz):
  // exact paths, or prefixes ending in '*' (core/slo_paths.h). The router counts them
  // apart (ReleaseStats::slo_requests / slo_5xx); latency counts every request.
  std::vector<std::string> exclude_paths;
  // Latency: the share of requests answered within latency_threshold_ms must be at least
  // latency_target. The threshold is one of the router's histogram bounds
  // (latency_buckets_ms(), core/agent_api.h): a share under any other value cannot be
  // computed from the router's counters, so the config refuses it.
  std::optional<double> latency_target;
  double latency_threshold_ms = 0;
  // The rolling window both objectives are kept over (1 hour to 90 days).
  int64_t window_ms = 30LL * 24 * 3600'000;
};

// environments.NAME.slo_gate: a deployment of an app with an SLO waits while its error
// budget is below min_budget or burning faster than max_burn, and is rolled back once it
// has spent more than max_budget_spend of the budget itself. Unset fields do not apply.
struct SloGateSpec {
  std::optional<double> min_budget;        // share of the budget left, 0..1
  std::optional<double> max_burn;          // burn rate, e.g. 2.0 for "2x"
  std::optional<double> max_budget_spend;  // share of the budget, 0..1
  bool enabled() const { return min_budget || max_burn || max_budget_spend; }
};

}  // namespace ferry
