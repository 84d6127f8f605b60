#include "analysis/sequential.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ferry {

namespace {

uint64_t errors_of(const ReleaseStats& s) {
  return s.status_5xx + s.upstream_errors;
}

// Counter growth since `before`; nullopt when a counter went down (the router restarted).
std::optional<std::pair<uint64_t, uint64_t>> growth(const std::optional<ReleaseStats>& before,
                                                    const ReleaseStats& now) {
  if (!before) return std::pair<uint64_t, uint64_t>{0, 0};
  if (now.requests < before->requests || errors_of(now) < errors_of(*before)) return std::nullopt;
  return std::pair<uint64_t, uint64_t>{now.requests - before->requests,
                                       errors_of(now) - errors_of(*before)};
}

}  // namespace

ErrorSprt::ErrorSprt(double alpha, double ratio)
    : alpha_(std::clamp(alpha, 1e-12, 0.5)),
      ratio_(std::max(ratio, 1.01)),
      threshold_(std::log(1.0 / alpha_)) {}

void ErrorSprt::add(uint64_t canary_requests, uint64_t canary_errors, uint64_t stable_requests,
                    uint64_t stable_errors) {
  // Errors can be counted a moment before their request is (different counters): never
  // more errors than requests in a window.
  canary_errors = std::min(canary_errors, canary_requests);
  stable_errors = std::min(stable_errors, stable_requests);
  canary_requests_ += canary_requests;
  canary_errors_ += canary_errors;
  stable_requests_ += stable_requests;
  stable_errors_ += stable_errors;
  ++windows_;
  if (canary_requests == 0 || stable_requests == 0) return;
  const double q =
      static_cast<double>(canary_requests) / static_cast<double>(canary_requests + stable_requests);
  const double p1 = ratio_ * q / (ratio_ * q + 1.0 - q);
  log_lr_ += static_cast<double>(canary_errors) * std::log(p1 / q) +
             static_cast<double>(stable_errors) * std::log((1.0 - p1) / (1.0 - q));
}

double ErrorSprt::canary_error_rate() const {
  return canary_requests_ ? static_cast<double>(canary_errors_) / canary_requests_ : 0.0;
}

double ErrorSprt::stable_error_rate() const {
  return stable_requests_ ? static_cast<double>(stable_errors_) / stable_requests_ : 0.0;
}

Json ErrorSprt::evidence() const {
  return Json{{"log_likelihood_ratio", log_lr_},
              {"threshold", threshold_},
              {"alpha", alpha_},
              {"ratio", ratio_},
              {"canary_requests", canary_requests_},
              {"canary_errors", canary_errors_},
              {"stable_requests", stable_requests_},
              {"stable_errors", stable_errors_},
              {"windows", windows_}};
}

SequentialErrorCheck::SequentialErrorCheck(const SequentialSpec& spec)
    : sprt_(spec.alpha, spec.ratio) {}

void SequentialErrorCheck::start_from(const ReleaseStats& canary, const ReleaseStats* stable) {
  last_canary_ = canary;
  if (stable) last_stable_ = *stable;
}

void SequentialErrorCheck::observe(const ReleaseStats& canary, const ReleaseStats* stable) {
  auto c = growth(last_canary_, canary);
  std::optional<std::pair<uint64_t, uint64_t>> s;
  if (stable) s = growth(last_stable_, *stable);
  last_canary_ = canary;
  if (stable) last_stable_ = *stable;
  if (!c || (stable && !s)) return;  // a restart: this snapshot is the new starting point
  sprt_.add(c->first, c->second, s ? s->first : 0, s ? s->second : 0);
}

std::optional<AnalysisResult> SequentialErrorCheck::verdict(double max_error_rate) const {
  if (!sprt_.crossed() || sprt_.canary_error_rate() <= max_error_rate) return std::nullopt;
  AnalysisResult r;
  r.verdict = Verdict::kFail;
  r.reasons.push_back(fmt::format(
      "error rate {:.1f}% > max {:.1f}% ({} of {} requests; stable {} of {}), decided by the "
      "sequential test (SPRT of canary vs stable errors: log likelihood ratio {:.1f} ≥ {:.1f}, "
      "α {:g}, ratio {:g})",
      sprt_.canary_error_rate() * 100, max_error_rate * 100, sprt_.canary_errors(),
      sprt_.canary_requests(), sprt_.stable_errors(), sprt_.stable_requests(), sprt_.log_lr(),
      sprt_.threshold(), sprt_.alpha(), sprt_.ratio()));
  r.metrics = Json{{"test", "sprt"}, {"sprt", sprt_.evidence()}};
  return r;
}

}  // namespace ferry
