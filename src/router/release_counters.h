// Per-release counters the router keeps for analysis: requests by status class, upstream
// errors, a latency histogram over latency_buckets_ms() plus overflow, and a ring of the
// most recent latencies. Updated once per finished request under a short mutex.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "core/agent_api.h"

namespace ferry::routing {

class ReleaseCounters {
 public:
  // How many recent latencies are kept for quantiles.
  static constexpr size_t kRecent = 4096;

  explicit ReleaseCounters(std::string release);

  // One finished request: the status the client got, whether the router answered it
  // because the upstream failed (connect failure, reset), and its latency. `slo_counted`:
  // also in the SLO's counter set (slo_requests, slo_5xx), i.e. not on an excluded path.
  void record(int status, bool upstream_error, double latency_ms, bool slo_counted = true);
  // An upstream failure after the response had started (counted, but no status).
  void record_upstream_error();
  // A request pinned to this release: counted only in pinned_requests / pinned_5xx.
  void record_pinned(int status);
  // A failure of this release that the canary shield answered from the stable release.
  void record_shielded();

  ReleaseStats snapshot() const;
  // Adds `from` (the same release's counters of the previous agent process) to these:
  // counts, histogram and sum add up; its recent latencies go before the ones seen here.
  // A histogram of another length is ignored.
  void seed(const ReleaseStats& from);

  // Requests of this release being served now.
  std::atomic<int> active{0};

 private:
  mutable Mutex mu_;
  ReleaseStats stats_ FERRY_GUARDED_BY(mu_);  // everything but the ring and active_requests
  std::vector<double> recent_
      FERRY_GUARDED_BY(mu_);  // ring of kRecent, next write at stats_.sample_seq % kRecent
};

}  // namespace ferry::routing
