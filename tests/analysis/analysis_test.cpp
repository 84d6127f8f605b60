#include "analysis/analysis.h"

#include <gtest/gtest.h>

#include <random>

#include "common/http_server.h"

namespace ferry {
namespace {

// A release's counters from `n` requests, `errors` of them 5xx, latencies around `ms`.
ReleaseStats traffic(uint64_t n, uint64_t errors, double ms, unsigned seed = 1) {
  ReleaseStats s;
  s.release = "v";
  s.requests = n;
  s.status_5xx = errors;
  s.status_2xx = n - errors;
  s.latency_counts.assign(latency_buckets_ms().size() + 1, 0);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<> jitter(0.8, 1.2);
  for (uint64_t i = 0; i < n; ++i) {
    const double v = ms * jitter(rng);
    size_t b = 0;
    while (b < latency_buckets_ms().size() && v > latency_buckets_ms()[b]) ++b;
    ++s.latency_counts[b];
    s.latency_sum_ms += v;
    s.recent_latencies_ms.push_back(v);
  }
  s.sample_seq = n;
  return s;
}

AnalysisSpec spec() {
  AnalysisSpec a;
  a.min_requests = 20;
  a.max_error_rate = 0.05;
  a.mann_whitney = true;
  a.confidence = 0.98;
  return a;
}

TEST(Analyse, TooFewRequestsIsInconclusive) {
  auto r = analyse(spec(), traffic(5, 0, 10), nullptr);
  EXPECT_EQ(r.verdict, Verdict::kInconclusive);
  EXPECT_EQ(r.reasons[0], "5 requests < min 20");
}

TEST(Analyse, ErrorRateOverMaxFails) {
  auto stable = traffic(200, 0, 10);
  auto r = analyse(spec(), traffic(100, 30, 10), &stable);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_NE(r.reasons[0].find("error rate 30.0% > max 5.0% (30 of 100 requests)"), std::string::npos)
      << r.reasons[0];
}

TEST(Analyse, HealthyCanaryPasses) {
  auto stable = traffic(400, 1, 10, 1);
  auto r = analyse(spec(), traffic(100, 1, 10, 2), &stable);
  EXPECT_EQ(r.verdict, Verdict::kPass) << r.reasons[0];
}

TEST(Analyse, AbsoluteLatencyBound) {
  auto s = spec();
  s.latency = {{.metric = "p99", .max_ms = 50}};
  EXPECT_EQ(analyse(s, traffic(100, 0, 20), nullptr).verdict, Verdict::kPass);
  auto r = analyse(s, traffic(100, 0, 200), nullptr);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_NE(r.reasons[0].find("p99"), std::string::npos);
}

TEST(Analyse, LatencyRatioToStable) {
  auto s = spec();
  s.mann_whitney = false;
  s.latency = {{.metric = "p95", .max_ratio = 1.5}};
  // Both within one histogram bucket (10-25 ms), so the estimate compares like with like.
  auto stable = traffic(200, 0, 12);
  EXPECT_EQ(analyse(s, traffic(100, 0, 13), &stable).verdict, Verdict::kPass);
  auto r = analyse(s, traffic(100, 0, 60), &stable);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_NE(r.reasons[0].find("× stable"), std::string::npos) << r.reasons[0];
}

TEST(Analyse, MannWhitneyCatchesASlowerCanary) {
  auto stable = traffic(300, 0, 20, 3);
  auto r = analyse(spec(), traffic(100, 0, 30, 4), &stable);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_LT(r.metrics["mann_whitney"]["p"].get<double>(), 0.02);
  // Same distribution: no failure.
  auto same = analyse(spec(), traffic(100, 0, 20, 5), &stable);
  EXPECT_EQ(same.verdict, Verdict::kPass) << same.reasons[0];
}

TEST(MannWhitney, TextbookValues) {
  auto all_greater = mann_whitney({4, 5, 6}, {1, 2, 3});
  EXPECT_DOUBLE_EQ(all_greater.u, 9);
  auto all_less = mann_whitney({1, 2, 3}, {4, 5, 6});
  EXPECT_DOUBLE_EQ(all_less.u, 0);
  EXPECT_GT(all_less.p_greater, 0.9);
  auto ties = mann_whitney({1, 1, 2}, {1, 2, 2});
  EXPECT_DOUBLE_EQ(ties.u, 3);  // ranks: 1,1,1 → 2; 2,2,2 → 5: a = 2+2+5 = 9 − 6
  EXPECT_EQ(mann_whitney({}, {1}).n1, 0u);
}

TEST(Histogram, QuantileInterpolatesWithinBucket) {
  ReleaseStats s;
  s.latency_counts.assign(latency_buckets_ms().size() + 1, 0);
  s.latency_counts[3] = 100;  // all in (5, 10] ms
  EXPECT_DOUBLE_EQ(histogram_quantile(s, 0.5), 7.5);
  EXPECT_DOUBLE_EQ(histogram_quantile(s, 1.0), 10);
  s.latency_counts.back() = 1000;  // overflow bucket
  EXPECT_DOUBLE_EQ(histogram_quantile(s, 0.99), latency_buckets_ms().back());
  EXPECT_EQ(histogram_quantile(ReleaseStats{}, 0.5), 0);
}

TEST(StatsDelta, SubtractsCountersAndKeepsOnlyNewSamples) {
  auto before = traffic(100, 5, 10);
  auto now = before;
  now.requests += 50;
  now.status_5xx += 10;
  now.status_2xx += 40;
  for (int i = 0; i < 50; ++i) now.recent_latencies_ms.push_back(99);
  now.sample_seq += 50;
  auto d = stats_delta(before, now);
  EXPECT_EQ(d.requests, 50u);
  EXPECT_EQ(d.status_5xx, 10u);
  ASSERT_EQ(d.recent_latencies_ms.size(), 50u);
  EXPECT_EQ(d.recent_latencies_ms.front(), 99);
  // Ring wrapped (fewer kept than taken): all of the ring is new.
  now.recent_latencies_ms.assign(30, 7);
  EXPECT_EQ(stats_delta(before, now).recent_latencies_ms.size(), 30u);
  // Counter reset (router restarted): everything is new.
  auto reset = traffic(10, 0, 10);
  EXPECT_EQ(stats_delta(before, reset).requests, 10u);
}

TEST(PromQL, QueriesPrometheusApiAndAppliesBounds) {
  HttpServer fake({});
  std::string seen;
  fake.route("GET", "/api/v1/query", [&](HttpRequest& r) {
    seen = r.query["query"];
    return HttpResponse::json(
        {{"status", "success"},
         {"data", {{"resultType", "vector"},
                   {"result", Json::array({{{"metric", Json::object()},
                                            {"value", Json::array({1700000000.0, "0.25"})}}})}}}});
  });
  ASSERT_TRUE(fake.start().ok());
  HttpPromQueryClient client;
  auto s = spec();
  s.min_requests = 0;
  s.mann_whitney = false;
  s.max_error_rate = 1;
  s.prometheus = {{.name = "errors",
                   .url = "http://127.0.0.1:" + std::to_string(fake.port()),
                   .query = "sum(rate(x{release=\"{{release}}\"}[1m]))",
                   .max = 0.1}};
  auto r = analyse(s, traffic(10, 0, 10), nullptr, &client, {{"release", "v3"}});
  EXPECT_EQ(seen, "sum(rate(x{release=\"v3\"}[1m]))");
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_NE(r.reasons[0].find("0.25 > max 0.1"), std::string::npos) << r.reasons[0];
  fake.stop();
  // Unreachable Prometheus: inconclusive, never a pass.
  auto down = analyse(s, traffic(10, 0, 10), nullptr, &client);
  EXPECT_EQ(down.verdict, Verdict::kInconclusive);
}

}  // namespace
}  // namespace ferry
