#include "slo/slo.h"

#include <gtest/gtest.h>

namespace ferry::slo {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kHourMs = 60 * kMin;
constexpr int64_t kDay = 24 * kHourMs;

Counts counts(uint64_t requests, uint64_t errors) {
  Counts c;
  c.requests = requests;
  c.errors = errors;
  c.latency.assign(latency_buckets_ms().size() + 1, 0);
  c.latency[0] = requests;  // all fast unless a test says otherwise
  return c;
}

SloSpec availability(double target, int64_t window_ms = 30 * kDay) {
  SloSpec s;
  s.availability_target = target;
  s.window_ms = window_ms;
  return s;
}

// The worked example of docs/slo.md: 99.9% over 30 days; 10,000,000 requests in the
// window, 4,000 of them 5xx; the last hour 320 requests a minute, 8 of them 5xx.
struct WorkedExample {
  int64_t now = 40 * kDay + 12 * kHourMs + 30'000;  // 30 s into a minute
  std::vector<Bucket> buckets;
  WorkedExample() {
    // Older traffic, compacted into an hour bucket ten days ago.
    buckets.push_back({minute_of(now) - 10 * kDay, kHourMs, counts(9'980'800, 3'520)});
    for (int k = 0; k < 60; ++k)
      buckets.push_back({minute_of(now) - k * kMin, kMin, counts(320, 8)});
    // Outside the 30-day window: never counted.
    buckets.push_back({minute_of(now) - 31 * kDay, kHourMs, counts(5'000'000, 5'000'000)});
  }
};

TEST(Slo, WorkedExampleFromTheDocs) {
  WorkedExample ex;
  const Status st = evaluate(availability(0.999), ex.buckets, ex.now);
  ASSERT_EQ(st.objectives.size(), 1u);
  const ObjectiveStatus& a = st.objectives[0];
  EXPECT_EQ(a.total, 10'000'000u);
  EXPECT_EQ(a.bad, 4'000u);
  EXPECT_NEAR(a.attainment, 0.9996, 1e-12);
  EXPECT_NEAR(a.budget_remaining, 0.6, 1e-9);  // 4,000 of 10,000 allowed errors spent
  // 8 / 320 = 2.5% bad against 0.1% allowed: 25x in every recent window.
  EXPECT_NEAR(a.burn_over("5m"), 25, 1e-9);
  EXPECT_NEAR(a.burn_over("1h"), 25, 1e-9);
  EXPECT_NEAR(a.burn_over("6h"), 25, 1e-9);
  ASSERT_EQ(a.alerts.size(), 2u);
  EXPECT_TRUE(a.alerts[0].second);  // page: 1h and 5m above 14.4x
  EXPECT_TRUE(a.alerts[1].second);  // ticket: 6h and 30m above 6x
  // A deployment from 20 to 11 minutes ago: its 10 minutes hold 80 errors, 0.8% of the
  // about 10,000 the window ending then allows (the 11 later minutes are not in it).
  EXPECT_NEAR(budget_spent(availability(0.999), ex.buckets, ex.now - 20 * kMin, ex.now - 11 * kMin),
              80 / (0.001 * (10'000'000 - 11 * 320)), 1e-12);
  // The gate of the example: min_budget 10% holds, max_burn 2x does not.
  SloGateSpec gate{.min_budget = 0.10, .max_burn = 2.0};
  auto why = gate_wait_reason(gate, st);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("25.0x over 1h"), std::string::npos) << *why;
  gate.max_burn.reset();
  EXPECT_FALSE(gate_wait_reason(gate, st).has_value());
  gate.min_budget = 0.7;
  why = gate_wait_reason(gate, st);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("60% of its error budget left, below min_budget 70%"), std::string::npos)
      << *why;
}

TEST(Slo, FastBurnEndsWhenTheShortWindowCalms) {
  // An hour of 5% errors that stopped 10 minutes ago: the 1h burn is still high, the 5m
  // one is 0, so the page alert and the gate's burn check both let go.
  const int64_t now = 5 * kDay;
  std::vector<Bucket> b;
  for (int k = 0; k < 60; ++k)
    b.push_back({minute_of(now) - k * kMin, kMin, k < 10 ? counts(100, 0) : counts(100, 5)});
  const Status st = evaluate(availability(0.999), b, now);
  EXPECT_GT(st.burn_over("1h"), 14.4);
  EXPECT_EQ(st.burn_over("5m"), 0);
  EXPECT_FALSE(st.objectives[0].alerts[0].second);
  EXPECT_FALSE(gate_wait_reason({.max_burn = 2.0}, st).has_value());
}

TEST(Slo, NothingCountedIsAFullBudget) {
  const Status st = evaluate(availability(0.99), {}, 1'000 * kDay);
  EXPECT_EQ(st.budget_remaining(), 1);
  EXPECT_EQ(st.burn_over("1h"), 0);
  EXPECT_FALSE(gate_wait_reason({.min_budget = 1.0, .max_burn = 0.1}, st).has_value());
  EXPECT_EQ(budget_spent(availability(0.99), {}, 0, 1'000 * kDay), 0);
}

TEST(Slo, OverspentBudgetGoesNegative) {
  const int64_t now = 3 * kDay;
  std::vector<Bucket> b{{minute_of(now), kMin, counts(1000, 30)}};
  const Status st = evaluate(availability(0.99), b, now);
  EXPECT_NEAR(st.budget_remaining(), -2, 1e-9);  // 30 errors, 10 allowed
}

TEST(Slo, WindowEdgeDropsOldBuckets) {
  // A 1-hour window: an error 61 minutes ago no longer counts, one 59 minutes ago does.
  const int64_t now = 2 * kDay;
  std::vector<Bucket> b{{minute_of(now) - 61 * kMin, kMin, counts(10, 10)},
                        {minute_of(now), kMin, counts(1000, 0)}};
  EXPECT_EQ(evaluate(availability(0.99, kHourMs), b, now).objectives[0].bad, 0u);
  b[0].start_ms = minute_of(now) - 59 * kMin;
  EXPECT_EQ(evaluate(availability(0.99, kHourMs), b, now).objectives[0].bad, 10u);
}

TEST(Slo, LatencyCountsRequestsAboveTheThresholdAsBad) {
  const auto& bounds = latency_buckets_ms();
  size_t i250 = 0;
  while (bounds[i250] != 250) ++i250;
  Counts c;
  c.requests = 100;
  c.latency.assign(bounds.size() + 1, 0);
  c.latency[i250] = 90;     // <= 250 ms: fast
  c.latency[i250 + 1] = 7;  // <= 500 ms: slow
  c.latency.back() = 3;     // overflow: slow
  EXPECT_EQ(classify(c, Objective::kLatency, 250).bad, 10u);
  EXPECT_EQ(classify(c, Objective::kLatency, 500).bad, 3u);
  SloSpec spec;
  spec.latency_target = 0.95;
  spec.latency_threshold_ms = 250;
  spec.window_ms = kDay;
  const Status st = evaluate(spec, {{minute_of(kDay), kMin, c}}, kDay);
  ASSERT_EQ(st.objectives.size(), 1u);
  EXPECT_EQ(st.objectives[0].objective, Objective::kLatency);
  EXPECT_NEAR(st.objectives[0].budget_remaining, 1 - 10.0 / 5.0, 1e-9);
}

TEST(Slo, TheTighterObjectiveDecides) {
  SloSpec spec = availability(0.999, kDay);
  spec.latency_target = 0.5;
  spec.latency_threshold_ms = 1;
  Counts c = counts(1000, 0);  // all within 1 ms, no errors
  const Status fine = evaluate(spec, {{minute_of(kDay), kMin, c}}, kDay);
  EXPECT_EQ(fine.budget_remaining(), 1);
  c.errors = 1;  // one error: availability budget 0%, latency untouched
  const Status st = evaluate(spec, {{minute_of(kDay), kMin, c}}, kDay);
  EXPECT_NEAR(st.budget_remaining(), 0, 1e-9);
  auto why = gate_wait_reason({.min_budget = 0.1}, st);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("availability"), std::string::npos);
}

TEST(Slo, CountsBetweenReadsSurviveARouterReset) {
  ReleaseStats a;
  a.requests = 100;
  a.status_5xx = 4;
  a.latency_counts.assign(latency_buckets_ms().size() + 1, 0);
  a.latency_counts[3] = 100;
  ReleaseStats b = a;
  b.requests = 150;
  b.status_5xx = 5;
  b.latency_counts[3] = 150;
  Counts d = counts_between(&a, b);
  EXPECT_EQ(d.requests, 50u);
  EXPECT_EQ(d.errors, 1u);
  EXPECT_EQ(d.latency[3], 50u);
  // A new router process without the old counters: 20 requests, all of them new.
  ReleaseStats reset = a;
  reset.requests = 20;
  reset.status_5xx = 2;
  reset.latency_counts[3] = 20;
  d = counts_between(&b, reset);
  EXPECT_EQ(d.requests, 20u);
  EXPECT_EQ(d.errors, 2u);
  // No earlier read: everything.
  EXPECT_EQ(counts_between(nullptr, b).requests, 150u);
}

TEST(Slo, MinuteOfRoundsDown) {
  EXPECT_EQ(minute_of(119'999), 60'000);
  EXPECT_EQ(minute_of(120'000), 120'000);
  EXPECT_EQ(percent(0.999), "99.9%");
  EXPECT_EQ(percent(-0.125), "-12.5%");
}

}  // namespace
}  // namespace ferry::slo
