// Counter deltas, histogram quantiles and the Mann-Whitney U test.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "analysis/analysis.h"

namespace ferry {

ReleaseStats stats_delta(const ReleaseStats& before, const ReleaseStats& now) {
  // A router restart resets counters: then everything in `now` is new.
  const bool reset = now.requests < before.requests || now.sample_seq < before.sample_seq;
  const ReleaseStats zero;
  const ReleaseStats& b = reset ? zero : before;
  ReleaseStats d;
  d.release = now.release;
  d.requests = now.requests - b.requests;
  d.status_1xx = now.status_1xx - std::min(now.status_1xx, b.status_1xx);
  d.status_2xx = now.status_2xx - std::min(now.status_2xx, b.status_2xx);
  d.status_3xx = now.status_3xx - std::min(now.status_3xx, b.status_3xx);
  d.status_4xx = now.status_4xx - std::min(now.status_4xx, b.status_4xx);
  d.status_5xx = now.status_5xx - std::min(now.status_5xx, b.status_5xx);
  d.upstream_errors = now.upstream_errors - std::min(now.upstream_errors, b.upstream_errors);
  d.latency_sum_ms = std::max(0.0, now.latency_sum_ms - b.latency_sum_ms);
  d.latency_counts = now.latency_counts;
  for (size_t i = 0; i < d.latency_counts.size() && i < b.latency_counts.size(); ++i)
    d.latency_counts[i] -= std::min(d.latency_counts[i], b.latency_counts[i]);
  // The ring holds the newest samples last; those taken after `before` are the last
  // (now.sample_seq - before.sample_seq) of them, or all the ring has if it wrapped.
  const uint64_t fresh = now.sample_seq - b.sample_seq;
  const size_t keep = static_cast<size_t>(std::min<uint64_t>(fresh, now.recent_latencies_ms.size()));
  d.recent_latencies_ms.assign(now.recent_latencies_ms.end() - static_cast<std::ptrdiff_t>(keep),
                               now.recent_latencies_ms.end());
  d.sample_seq = fresh;
  d.active_requests = now.active_requests;
  return d;
}

double error_rate(const ReleaseStats& s) {
  if (s.requests == 0) return 0;
  return static_cast<double>(s.status_5xx + s.upstream_errors) / static_cast<double>(s.requests);
}

double histogram_quantile(const ReleaseStats& s, double q) {
  const auto& bounds = latency_buckets_ms();
  uint64_t total = 0;
  for (uint64_t c : s.latency_counts) total += c;
  if (total == 0) return 0;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double seen = 0;
  for (size_t i = 0; i < s.latency_counts.size(); ++i) {
    const double c = static_cast<double>(s.latency_counts[i]);
    if (seen + c >= rank && c > 0) {
      const double lo = i == 0 ? 0.0 : bounds[std::min(i - 1, bounds.size() - 1)];
      // The overflow bucket has no upper bound: report its lower bound.
      if (i >= bounds.size()) return bounds.back();
      const double hi = bounds[i];
      return lo + (hi - lo) * (rank - seen) / c;
    }
    seen += c;
  }
  return bounds.back();
}

MannWhitney mann_whitney(const std::vector<double>& a, const std::vector<double>& b) {
  MannWhitney r;
  r.n1 = a.size();
  r.n2 = b.size();
  if (a.empty() || b.empty()) return r;
  struct Obs {
    double v;
    bool from_a;
  };
  std::vector<Obs> all;
  all.reserve(a.size() + b.size());
  for (double v : a) all.push_back({v, true});
  for (double v : b) all.push_back({v, false});
  std::sort(all.begin(), all.end(), [](const Obs& x, const Obs& y) { return x.v < y.v; });
  // Average ranks for ties; accumulate the tie correction term sum(t^3 - t).
  double rank_sum_a = 0, tie_term = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].v == all[i].v) ++j;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k)
      if (all[k].from_a) rank_sum_a += avg_rank;
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  const double n1 = static_cast<double>(r.n1), n2 = static_cast<double>(r.n2), n = n1 + n2;
  r.u = rank_sum_a - n1 * (n1 + 1) / 2.0;
  const double mean = n1 * n2 / 2.0;
  const double var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)));
  if (var <= 0) return r;
  // Continuity correction of 0.5 towards the mean.
  r.z = (r.u - mean - 0.5) / std::sqrt(var);
  r.p_greater = 0.5 * std::erfc(r.z / std::sqrt(2.0));
  return r;
}

}  // namespace ferry
