// The per-release counters on their own: the ring of recent latencies keeps the newest
// kRecent samples in order, and seeding from a previous process keeps the newest of both.
// (Through the router this took 4,196 proxied requests; the ring is the counters' own.)
#include "router/release_counters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace ferry::routing {
namespace {

TEST(ReleaseCounters, RecentLatencyRingKeepsTheNewestInOrder) {
  ReleaseCounters c("v1");
  const size_t n = ReleaseCounters::kRecent + 100;
  for (size_t i = 0; i < n; ++i) c.record(200, false, static_cast<double>(i));
  const ReleaseStats s = c.snapshot();
  EXPECT_EQ(s.sample_seq, n);
  ASSERT_EQ(s.recent_latencies_ms.size(), ReleaseCounters::kRecent);
  // Oldest first: the 100 first samples were overwritten, the rest are in order.
  for (size_t k = 0; k < s.recent_latencies_ms.size(); ++k)
    ASSERT_EQ(s.recent_latencies_ms[k], static_cast<double>(n - ReleaseCounters::kRecent + k)) << k;
  EXPECT_EQ(s.requests, n);
}

TEST(ReleaseCounters, SeedKeepsTheNewestOfBothProcesses) {
  ReleaseCounters before("v1");
  for (int i = 0; i < 10; ++i) before.record(200, false, 1000.0 + i);
  ReleaseCounters after("v1");
  for (size_t i = 0; i < ReleaseCounters::kRecent - 5; ++i) after.record(200, false, 1.0);
  after.seed(before.snapshot());
  const ReleaseStats s = after.snapshot();
  EXPECT_EQ(s.sample_seq, ReleaseCounters::kRecent - 5 + 10);
  ASSERT_EQ(s.recent_latencies_ms.size(), ReleaseCounters::kRecent);
  // Room for 5 of the previous process's 10: its newest five.
  std::vector<double> seeded;
  for (double v : s.recent_latencies_ms)
    if (v >= 1000.0) seeded.push_back(v);
  std::sort(seeded.begin(), seeded.end());
  EXPECT_EQ(seeded, (std::vector<double>{1005, 1006, 1007, 1008, 1009}));
}

TEST(ReleaseCounters, TheSloSetLeavesOutExcludedRequestsAndIsCarriedToTheNextProcess) {
  ReleaseCounters before("v1");
  before.record(200, false, 1.0);
  before.record(503, false, 1.0, /*slo_counted=*/false);  // an excluded path
  before.record(502, true, 1.0);
  before.record(200, false, 1.0, /*slo_counted=*/false);
  before.record_pinned(500);  // pinned: in neither set
  ReleaseStats b = before.snapshot();
  EXPECT_EQ(b.requests, 4u);
  EXPECT_EQ(b.status_5xx, 2u);
  EXPECT_EQ(b.slo_requests, 2u);
  EXPECT_EQ(b.slo_5xx, 1u);
  // A new agent process (a hand-over) continues from the previous one's counts.
  ReleaseCounters after("v1");
  after.record(500, false, 1.0);
  after.seed(b);
  const ReleaseStats a = after.snapshot();
  EXPECT_EQ(a.slo_requests, 3u);
  EXPECT_EQ(a.slo_5xx, 2u);
  EXPECT_EQ(a.requests, 5u);
}

}  // namespace
}  // namespace ferry::routing
