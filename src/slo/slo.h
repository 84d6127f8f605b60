// Service level objectives from the router's own counters (docs/slo.md): the counts a
// collector adds up per minute, and the pure computation over them of attainment,
// remaining error budget, multi-window burn rates (the SRE workbook's fast and slow
// pairs), the release gate's verdict and a deployment's budget spend. No I/O, no clock:
// every function takes "now" in unix milliseconds, so long windows are tested with
// made-up buckets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/agent_api.h"
#include "core/slo_spec.h"

namespace ferry::slo {

// Requests of one period: those availability counts and the 5xx ones among them, and the
// latency histogram of all of them over latency_buckets_ms() plus the overflow bucket.
// Without excluded paths both count the same requests; with them (SloSpec::exclude_paths)
// `requests` and `errors` leave those paths out and the histogram does not.
struct Counts {
  uint64_t requests = 0;
  uint64_t errors = 0;
  std::vector<uint64_t> latency;  // empty or latency_buckets_ms().size() + 1 long

  void add(const Counts& other);
  // The requests the latency histogram counts (`requests` when it is empty).
  uint64_t latency_total() const;
  bool empty() const { return requests == 0 && latency_total() == 0; }
};

// What the router's counters of one release say happened between two reads of them.
// `before` is the earlier read (nullptr: none, everything in `now` is new). A read with
// fewer requests than `before` means the router's counters were reset (a new router
// process that did not inherit them): everything in `now` is new then. Pinned requests are
// never in these counters (the router keeps them apart), so they never count. With
// `exclude_paths`, requests and errors come from the router's SLO counter set
// (ReleaseStats::slo_requests, slo_5xx), which leaves the excluded paths out.
Counts counts_between(const ReleaseStats* before, const ReleaseStats& now,
                      bool exclude_paths = false);

// Counts of the minutes (or, once compacted, hours) starting at start_ms.
struct Bucket {
  int64_t start_ms = 0;
  int64_t width_ms = 60'000;
  Counts counts;
};

// The minute a time falls in.
inline int64_t minute_of(int64_t ms) {
  return ms - ((ms % 60'000) + 60'000) % 60'000;
}

// The sum of the buckets that start in [from_ms, to_ms).
Counts sum(const std::vector<Bucket>& buckets, int64_t from_ms, int64_t to_ms);

enum class Objective { kAvailability, kLatency };
std::string_view to_string(Objective o);

// How many requests count for an objective and how many of them were bad: 5xx answers
// for availability; answers slower than threshold_ms for latency (threshold_ms is one of
// the histogram's bounds, so the split is exact).
struct GoodBad {
  uint64_t total = 0;
  uint64_t bad = 0;
};
GoodBad classify(const Counts& c, Objective o, double threshold_ms);

// The burn-rate alert pairs: a long window for significance and a short one so the alert
// stops soon after the burning does (SRE workbook, "multiwindow, multi-burn-rate").
struct BurnAlert {
  std::string name;  // "page" | "ticket"
  int64_t long_ms = 0;
  int64_t short_ms = 0;
  double factor = 0;
};
const std::vector<BurnAlert>& burn_alerts();  // 1h/5m at 14.4x, 6h/30m at 6x
// The windows burn rates are reported over, in order: 5m, 30m, 1h, 6h.
const std::vector<std::pair<std::string, int64_t>>& burn_windows();

struct ObjectiveStatus {
  Objective objective = Objective::kAvailability;
  double target = 0;
  double threshold_ms = 0;  // latency only
  uint64_t total = 0;       // requests over the SLO window
  uint64_t bad = 0;
  // good / total; 1 while nothing was counted.
  double attainment = 1;
  // 1 - bad / allowed, allowed = (1 - target) * total: 1 untouched, 0 spent, below 0
  // overspent. 1 while nothing was counted.
  double budget_remaining = 1;
  // Burn rate per burn_windows() entry: the bad share over the window divided by the
  // share the target allows (1 spends the budget exactly over the SLO window); 0 when the
  // window saw no request.
  std::vector<std::pair<std::string, double>> burn;
  std::vector<std::pair<std::string, bool>> alerts;  // burn_alerts() name → firing
  double burn_over(std::string_view window) const;
};

struct Status {
  int64_t now_ms = 0;
  int64_t window_ms = 0;
  std::vector<ObjectiveStatus> objectives;  // availability first, when set
  // The tightest figures over the objectives (what the gate reads).
  double budget_remaining() const;
  double burn_over(std::string_view window) const;
};

// The SLO's status at now_ms from the buckets of its app and environment (any order;
// those outside the window are ignored).
Status evaluate(const SloSpec& spec, const std::vector<Bucket>& buckets, int64_t now_ms);

// The share of the error budget that the bad requests of [from_ms, to_ms) used, for the
// objective that lost the most: bad / ((1 - target) * requests over the SLO window ending
// at to_ms). 0 while that window saw no request.
double budget_spent(const SloSpec& spec, const std::vector<Bucket>& buckets, int64_t from_ms,
                    int64_t to_ms);

// The release gate (environments.NAME.slo_gate): why a deployment must wait, or nullopt
// when it may go. It waits while the budget left is below min_budget, or while both the
// 1h and the 5m burn rate are above max_burn (the short window lets it go soon after the
// burning stops).
std::optional<std::string> gate_wait_reason(const SloGateSpec& gate, const Status& status);

// "99.9%", "4.2%", "-12.5%": a share for messages.
std::string percent(double share);

}  // namespace ferry::slo
