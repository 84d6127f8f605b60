// A sequential test of the canary's errors against the stable release's, valid however
// often it is looked at: a Wald sequential probability ratio test on where the errors
// come from. Given the share q of requests the canary served in a short window, an error
// is the canary's with probability q when both releases fail equally often (H0), and
// with probability p1 = r·q / (r·q + 1 − q) when the canary fails r times as often (H1).
// The log likelihood ratio of H1 to H0 adds up over windows; under H0 its exponential
// is a nonnegative supermartingale, so by Ville's inequality it ever reaches log(1/α)
// with probability at most α, no matter how many times it is checked. Pure; not
// thread-safe (one per deployment runner).
#pragma once

#include <cstdint>
#include <optional>

#include "analysis/analysis.h"
#include "common/json.h"
#include "core/spec.h"

namespace ferry {

class ErrorSprt {
 public:
  // `alpha`: the bound on a false decision (0 < alpha < 1); `ratio`: r above (> 1).
  ErrorSprt(double alpha, double ratio);

  // Adds one window: requests and errors of each release since the previous add().
  // A window in which only one release served requests carries no evidence.
  void add(uint64_t canary_requests, uint64_t canary_errors, uint64_t stable_requests,
           uint64_t stable_errors);

  double log_lr() const { return log_lr_; }
  double threshold() const { return threshold_; }
  double alpha() const { return alpha_; }
  double ratio() const { return ratio_; }
  bool crossed() const { return log_lr_ >= threshold_; }
  uint64_t canary_requests() const { return canary_requests_; }
  uint64_t canary_errors() const { return canary_errors_; }
  uint64_t stable_requests() const { return stable_requests_; }
  uint64_t stable_errors() const { return stable_errors_; }
  double canary_error_rate() const;
  double stable_error_rate() const;
  // The numbers behind a decision, for the analysis event.
  Json evidence() const;

 private:
  double alpha_, ratio_, threshold_;
  double log_lr_ = 0;
  uint64_t canary_requests_ = 0, canary_errors_ = 0, stable_requests_ = 0, stable_errors_ = 0;
  uint64_t windows_ = 0;
};

// Feeds an ErrorSprt from cumulative router counters: each call adds what changed since
// the last one (a counter that went down, a router restart, starts over from it).
class SequentialErrorCheck {
 public:
  explicit SequentialErrorCheck(const SequentialSpec& spec);
  // The counters when the canary started taking traffic: the first observe() counts
  // from here instead of only setting its starting point. `stable` may be null.
  void start_from(const ReleaseStats& canary, const ReleaseStats* stable);
  // Cumulative counters of both releases now; `stable` may be null (no baseline).
  void observe(const ReleaseStats& canary, const ReleaseStats* stable);
  // A fail verdict once the test has crossed and the canary's error rate over the same
  // requests is above `max_error_rate` (a canary within the allowed rate is not stopped
  // for being worse than a flawless stable); nullopt otherwise.
  std::optional<AnalysisResult> verdict(double max_error_rate) const;
  const ErrorSprt& test() const { return sprt_; }

 private:
  ErrorSprt sprt_;
  std::optional<ReleaseStats> last_canary_, last_stable_;
};

}  // namespace ferry
