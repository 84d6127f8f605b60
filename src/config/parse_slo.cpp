// apps.NAME.slo (and its per-environment override) and environments.NAME.slo_gate
// (docs/slo.md). Only what the router's counters can carry out is accepted: a latency
// threshold at one of the histogram's bounds, and availability's exclude_paths within the
// bounds the router counts apart (core/slo_paths.h).
#include <charconv>
#include <cmath>

#include "config/parsers.h"
#include "config/values.h"
#include "core/agent_api.h"
#include "core/slo_paths.h"

namespace ferry::config {
namespace {

constexpr int64_t kMinSloWindowMs = 3'600'000;              // 1h
constexpr int64_t kMaxSloWindowMs = 90LL * 24 * 3'600'000;  // 90d (bounded storage)
constexpr double kMinTarget = 0.5;
constexpr double kMaxTarget = 0.99999;

// A target such as "99.9%" or 0.999, strictly between 50% and 100%: a target of 100%
// leaves no error budget to spend or gate on.
bool get_target(const Field& f, double& out) {
  if (!f.present()) return false;
  if (!f.is_scalar()) {
    f.type_error("a percentage such as \"99.9%\"");
    return false;
  }
  auto r = parse_fraction(f.node().Scalar());
  if (auto* e = std::get_if<std::string>(&r)) {
    f.error(*e);
    return false;
  }
  const double v = std::get<double>(r);
  if (v < kMinTarget || v > kMaxTarget) {
    f.error(describe(f.node()) +
            " is out of range: an SLO target is from 50% to 99.999% (100% leaves no error "
            "budget)");
    return false;
  }
  out = v;
  return true;
}

// A share of the error budget: "10%" or 0.1, from 0 to 100%.
bool get_share(const Field& f, std::optional<double>& out) {
  if (!f.present()) return false;
  if (!f.is_scalar()) {
    f.type_error("a percentage such as \"10%\"");
    return false;
  }
  auto r = parse_fraction(f.node().Scalar());
  if (auto* e = std::get_if<std::string>(&r)) {
    f.error(*e);
    return false;
  }
  out = std::get<double>(r);
  return true;
}

// A burn rate: "2x" or 2, above 0 and at most 1000.
bool get_burn(const Field& f, std::optional<double>& out) {
  if (!f.present()) return false;
  if (!f.is_scalar()) {
    f.type_error("a burn rate such as \"2x\"");
    return false;
  }
  std::string s = f.node().Scalar();
  if (!s.empty() && (s.back() == 'x' || s.back() == 'X')) s.pop_back();
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) {
    f.error(describe(f.node()) + " is not a burn rate: use a number followed by x, e.g. \"2x\"");
    return false;
  }
  if (v <= 0 || v > 1000) {
    f.error(describe(f.node()) + " is out of range: a burn rate is above 0x and at most 1000x");
    return false;
  }
  out = v;
  return true;
}

std::string bounds_text() {
  std::string out;
  for (double b : latency_buckets_ms()) {
    if (!out.empty()) out += ", ";
    out += std::to_string(static_cast<int64_t>(b)) + "ms";
  }
  return out;
}

void parse_slo_latency(const Field& f, SloSpec& out) {
  if (!f.expect_map({"threshold", "target"})) return;
  double target = 0;
  if (get_target(f.required("target"), target)) out.latency_target = target;
  Field t = f.required("threshold");
  if (!t.present()) return;
  int ms = 0;
  if (!t.get_duration_ms(ms, 1, 10'000)) {
    out.latency_target.reset();
    return;
  }
  const auto& bounds = latency_buckets_ms();
  bool known = false;
  for (double b : bounds) known |= static_cast<int>(b) == ms;
  if (!known) {
    t.error(describe(t.node()) +
            " is not a bound of the router's latency histogram, so the share of requests under "
            "it cannot be counted; use one of " +
            bounds_text());
    out.latency_target.reset();
    return;
  }
  out.latency_threshold_ms = ms;
}

}  // namespace

void parse_slo(const Field& f, std::optional<SloSpec>& out) {
  if (!f.present()) return;
  if (!f.expect_map({"availability", "latency", "window"})) return;
  SloSpec spec;
  Field a = f.child("availability");
  if (a.present()) {
    // `availability: 99.9%` or `availability: {target: 99.9%}`.
    if (a.is_scalar()) {
      double v = 0;
      if (get_target(a, v)) spec.availability_target = v;
    } else if (a.expect_map({"target", "exclude_paths"})) {
      double v = 0;
      if (get_target(a.required("target"), v)) spec.availability_target = v;
      if (Field ex = a.child("exclude_paths"); ex.present()) {
        std::vector<std::string> paths;
        if (ex.get_string_list(paths, kMaxSloExcludePaths)) {
          if (Status st = check_slo_exclude_paths(paths); !st.ok())
            ex.error(st.message());
          else
            spec.exclude_paths = std::move(paths);
        }
      }
    }
  }
  if (Field l = f.child("latency"); l.present()) parse_slo_latency(l, spec);
  Field w = f.child("window");
  if (w.present()) {
    if (!w.is_scalar()) {
      w.type_error("a duration such as 30d");
    } else {
      auto r = parse_duration(w.node().Scalar());
      if (auto* e = std::get_if<std::string>(&r)) {
        w.error(*e);
      } else if (int64_t v = std::get<int64_t>(r); v < kMinSloWindowMs || v > kMaxSloWindowMs) {
        w.error(describe(w.node()) + " is out of range: an SLO window is from 1h to 90d");
      } else if (v % 60'000 != 0) {
        w.error(describe(w.node()) + " is not a whole number of minutes (the SLO's resolution)");
      } else {
        spec.window_ms = v;
      }
    }
  }
  if (!a.present() && !f.child("latency").present())
    f.error("an SLO needs an objective: availability (e.g. 99.9%) or latency (threshold, target)");
  out = spec;
}

void parse_slo_gate(const Field& f, SloGateSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"min_budget", "max_burn", "max_budget_spend"})) return;
  get_share(f.child("min_budget"), out.min_budget);
  get_burn(f.child("max_burn"), out.max_burn);
  get_share(f.child("max_budget_spend"), out.max_budget_spend);
  if (out.max_budget_spend && *out.max_budget_spend <= 0)
    f.child("max_budget_spend")
        .error("max_budget_spend 0% would roll back every deployment; use at least 0.1%");
}

}  // namespace ferry::config
