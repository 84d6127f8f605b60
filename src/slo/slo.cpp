#include "slo/slo.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ferry::slo {

void Counts::add(const Counts& other) {
  requests += other.requests;
  errors += other.errors;
  if (latency.size() < other.latency.size()) latency.resize(other.latency.size(), 0);
  for (size_t i = 0; i < other.latency.size(); ++i) latency[i] += other.latency[i];
}

uint64_t Counts::latency_total() const {
  if (latency.empty()) return requests;
  uint64_t n = 0;
  for (uint64_t v : latency) n += v;
  return n;
}

Counts counts_between(const ReleaseStats* before, const ReleaseStats& now, bool exclude_paths) {
  const auto requests = [&](const ReleaseStats& s) {
    return exclude_paths ? s.slo_requests : s.requests;
  };
  const auto errors = [&](const ReleaseStats& s) {
    return exclude_paths ? s.slo_5xx : s.status_5xx;
  };
  const bool reset = !before || now.requests < before->requests ||
                     now.status_5xx < before->status_5xx || requests(now) < requests(*before) ||
                     errors(now) < errors(*before) ||
                     before->latency_counts.size() != now.latency_counts.size();
  Counts c;
  if (reset) {
    c.requests = requests(now);
    c.errors = errors(now);
    c.latency = now.latency_counts;
    return c;
  }
  c.requests = requests(now) - requests(*before);
  c.errors = errors(now) - errors(*before);
  c.latency = now.latency_counts;
  for (size_t i = 0; i < c.latency.size(); ++i)
    c.latency[i] -= std::min(c.latency[i], before->latency_counts[i]);
  return c;
}

Counts sum(const std::vector<Bucket>& buckets, int64_t from_ms, int64_t to_ms) {
  Counts out;
  for (const auto& b : buckets)
    if (b.start_ms >= from_ms && b.start_ms < to_ms) out.add(b.counts);
  return out;
}

std::string_view to_string(Objective o) {
  return o == Objective::kAvailability ? "availability" : "latency";
}

GoodBad classify(const Counts& c, Objective o, double threshold_ms) {
  GoodBad r;
  if (o == Objective::kAvailability) {
    r.total = c.requests;
    r.bad = std::min(c.errors, c.requests);
    return r;
  }
  r.total = c.latency_total();
  // Histogram buckets are upper bounds (le): those above the threshold are slow.
  const auto& bounds = latency_buckets_ms();
  uint64_t fast = 0;
  for (size_t i = 0; i < c.latency.size() && i < bounds.size(); ++i)
    if (bounds[i] <= threshold_ms) fast += c.latency[i];
  r.bad = r.total - std::min(fast, r.total);
  return r;
}

const std::vector<BurnAlert>& burn_alerts() {
  static const std::vector<BurnAlert> kAlerts = {
      {"page", 3'600'000, 300'000, 14.4},
      {"ticket", 6 * 3'600'000, 1'800'000, 6.0},
  };
  return kAlerts;
}

const std::vector<std::pair<std::string, int64_t>>& burn_windows() {
  static const std::vector<std::pair<std::string, int64_t>> kWindows = {
      {"5m", 300'000}, {"30m", 1'800'000}, {"1h", 3'600'000}, {"6h", 6 * 3'600'000}};
  return kWindows;
}

namespace {

double burn_rate(const GoodBad& gb, double target) {
  if (gb.total == 0) return 0;
  return (static_cast<double>(gb.bad) / static_cast<double>(gb.total)) / (1 - target);
}

std::string window_name(int64_t ms) {
  for (const auto& [name, w] : burn_windows())
    if (w == ms) return name;
  return std::to_string(ms / 60'000) + "m";
}

// The objectives a spec sets, with their targets and thresholds.
struct ObjectiveDef {
  Objective o;
  double target;
  double threshold_ms;
};
std::vector<ObjectiveDef> objectives_of(const SloSpec& spec) {
  std::vector<ObjectiveDef> out;
  if (spec.availability_target)
    out.push_back({Objective::kAvailability, *spec.availability_target, 0});
  if (spec.latency_target)
    out.push_back({Objective::kLatency, *spec.latency_target, spec.latency_threshold_ms});
  return out;
}

}  // namespace

double ObjectiveStatus::burn_over(std::string_view window) const {
  for (const auto& [name, v] : burn)
    if (name == window) return v;
  return 0;
}

double Status::budget_remaining() const {
  double out = 1;
  for (const auto& o : objectives) out = std::min(out, o.budget_remaining);
  return out;
}

double Status::burn_over(std::string_view window) const {
  double out = 0;
  for (const auto& o : objectives) out = std::max(out, o.burn_over(window));
  return out;
}

Status evaluate(const SloSpec& spec, const std::vector<Bucket>& buckets, int64_t now_ms) {
  Status st;
  st.now_ms = now_ms;
  st.window_ms = spec.window_ms;
  // Everything up to the end of the current minute counts (its bucket is being filled).
  const int64_t end = minute_of(now_ms) + 60'000;
  const Counts window = sum(buckets, end - spec.window_ms, end);
  std::vector<std::pair<std::string, Counts>> recent;
  for (const auto& [name, ms] : burn_windows())
    recent.emplace_back(name, sum(buckets, end - ms, end));
  for (const auto& def : objectives_of(spec)) {
    ObjectiveStatus os;
    os.objective = def.o;
    os.target = def.target;
    os.threshold_ms = def.threshold_ms;
    const GoodBad gb = classify(window, def.o, def.threshold_ms);
    os.total = gb.total;
    os.bad = gb.bad;
    if (gb.total > 0) {
      os.attainment = static_cast<double>(gb.total - gb.bad) / static_cast<double>(gb.total);
      const double allowed = (1 - def.target) * static_cast<double>(gb.total);
      os.budget_remaining = 1 - static_cast<double>(gb.bad) / allowed;
    }
    for (const auto& [name, c] : recent)
      os.burn.emplace_back(name, burn_rate(classify(c, def.o, def.threshold_ms), def.target));
    for (const auto& a : burn_alerts()) {
      const bool firing = os.burn_over(window_name(a.long_ms)) > a.factor &&
                          os.burn_over(window_name(a.short_ms)) > a.factor;
      os.alerts.emplace_back(a.name, firing);
    }
    st.objectives.push_back(std::move(os));
  }
  return st;
}

double budget_spent(const SloSpec& spec, const std::vector<Bucket>& buckets, int64_t from_ms,
                    int64_t to_ms) {
  const int64_t from = minute_of(from_ms);
  const int64_t to = minute_of(to_ms) + 60'000;
  const Counts during = sum(buckets, from, to);
  const Counts window = sum(buckets, to - spec.window_ms, to);
  double worst = 0;
  for (const auto& def : objectives_of(spec)) {
    const GoodBad w = classify(window, def.o, def.threshold_ms);
    if (w.total == 0) continue;
    const GoodBad d = classify(during, def.o, def.threshold_ms);
    const double allowed = (1 - def.target) * static_cast<double>(w.total);
    worst = std::max(worst, static_cast<double>(d.bad) / allowed);
  }
  return worst;
}

std::string percent(double share) {
  if (!std::isfinite(share)) return share > 0 ? "inf%" : "-inf%";
  std::string s = fmt::format("{:.3f}", share * 100);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + "%";
}

std::optional<std::string> gate_wait_reason(const SloGateSpec& gate, const Status& status) {
  for (const auto& o : status.objectives) {
    const std::string what = std::string(to_string(o.objective));
    if (gate.min_budget && o.budget_remaining < *gate.min_budget)
      return fmt::format("the {} SLO has {} of its error budget left, below min_budget {}", what,
                         percent(o.budget_remaining), percent(*gate.min_budget));
    if (gate.max_burn) {
      const double long_burn = o.burn_over("1h"), short_burn = o.burn_over("5m");
      if (long_burn > *gate.max_burn && short_burn > *gate.max_burn)
        return fmt::format(
            "the {} SLO's error budget burns at {:.1f}x over 1h and {:.1f}x over 5m, above "
            "max_burn {:g}x",
            what, long_burn, short_burn, *gate.max_burn);
    }
  }
  return std::nullopt;
}

}  // namespace ferry::slo
