// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/release_counters.h"

#include <algorithm>

namespace ferry::routing {

ReleaseCounters::ReleaseCounters(std::string release) : recent_(kRecent, 0.0) {
  stats_.release = std::move(release);
  stats_.latency_counts.assign(latency_buckets_ms().size() + 1, 0);
}

void ReleaseCounters::record(int status, bool upstream_error, double latency_ms, bool slo_counted) {
  const auto& bounds = latency_buckets_ms();
  // Buckets are upper bounds (le): the first bound >= latency, else the overflow bucket.
  size_t bucket = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), latency_ms) -
                                      bounds.begin());
  MutexLock lock(mu_);
  ++stats_.requests;
  switch (status / 100) {
    case 1:
      ++stats_.status_1xx;
      break;
    case 2:
      ++stats_.status_2xx;
      break;
    case 3:
      ++stats_.status_3xx;
      break;
    case 4:
      ++stats_.status_4xx;
      break;
    default:
      ++stats_.status_5xx;
      if (slo_counted) ++stats_.slo_5xx;
      break;
  }
  if (upstream_error) ++stats_.upstream_errors;
  if (slo_counted) ++stats_.slo_requests;
  ++stats_.latency_counts[bucket];
  stats_.latency_sum_ms += latency_ms;
  recent_[stats_.sample_seq % kRecent] = latency_ms;
  ++stats_.sample_seq;
}

void ReleaseCounters::record_upstream_error() {
  MutexLock lock(mu_);
  ++stats_.upstream_errors;
}

void ReleaseCounters::record_pinned(int status) {
  MutexLock lock(mu_);
  ++stats_.pinned_requests;
  if (status >= 500) ++stats_.pinned_5xx;
}

void ReleaseCounters::record_shielded() {
  MutexLock lock(mu_);
  ++stats_.shielded;
}

void ReleaseCounters::seed(const ReleaseStats& from) {
  MutexLock lock(mu_);
  ReleaseStats& s = stats_;
  s.requests += from.requests;
  s.status_1xx += from.status_1xx;
  s.status_2xx += from.status_2xx;
  s.status_3xx += from.status_3xx;
  s.status_4xx += from.status_4xx;
  s.status_5xx += from.status_5xx;
  s.upstream_errors += from.upstream_errors;
  s.shielded += from.shielded;
  s.pinned_requests += from.pinned_requests;
  s.pinned_5xx += from.pinned_5xx;
  s.slo_requests += from.slo_requests;
  s.slo_5xx += from.slo_5xx;
  if (from.latency_counts.size() == s.latency_counts.size()) {
    for (size_t i = 0; i < s.latency_counts.size(); ++i)
      s.latency_counts[i] += from.latency_counts[i];
    s.latency_sum_ms += from.latency_sum_ms;
  }
  // The ring in order: the predecessor's latest samples, then this process's.
  const size_t mine = static_cast<size_t>(std::min<uint64_t>(s.sample_seq, kRecent));
  std::vector<double> ordered;
  ordered.reserve(kRecent);
  const size_t theirs = std::min(from.recent_latencies_ms.size(), kRecent - mine);
  ordered.insert(ordered.end(),
                 from.recent_latencies_ms.end() - static_cast<std::ptrdiff_t>(theirs),
                 from.recent_latencies_ms.end());
  for (uint64_t i = s.sample_seq - mine; i < s.sample_seq; ++i)
    ordered.push_back(recent_[i % kRecent]);
  s.sample_seq += from.sample_seq;
  // Rewrite the ring so that the newest sample sits just before sample_seq % kRecent.
  for (size_t k = 0; k < ordered.size(); ++k)
    recent_[(s.sample_seq - ordered.size() + k) % kRecent] = ordered[k];
}

ReleaseStats ReleaseCounters::snapshot() const {
  ReleaseStats out;
  {
    MutexLock lock(mu_);
    out = stats_;
    size_t n = std::min<uint64_t>(stats_.sample_seq, kRecent);
    out.recent_latencies_ms.reserve(n);
    // Oldest first: the ring's next write position holds the oldest once it wrapped.
    for (uint64_t i = stats_.sample_seq - n; i < stats_.sample_seq; ++i)
      out.recent_latencies_ms.push_back(recent_[i % kRecent]);
  }
  out.active_requests = active.load(std::memory_order_relaxed);
  return out;
}

}  // namespace ferry::routing
