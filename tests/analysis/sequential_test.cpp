// The sequential error test over a seeded traffic simulator: no false rollback in 1,000
// good canaries with realistic noise, looked at ten times a second; bad canaries are
// stopped after a handful of their requests.
#include "analysis/sequential.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace ferry {
namespace {

struct Counters {
  ReleaseStats canary, stable;
};

// One simulated canary: traffic at `rps` (varying), `canary_share` of it to the canary,
// each release failing with its own probability per window. Looks every 100 ms.
struct Sim {
  std::mt19937_64 rng;
  explicit Sim(uint64_t seed) : rng(seed) {}

  uint64_t poisson(double mean) {
    if (mean <= 0) return 0;
    return std::poisson_distribution<uint64_t>(mean)(rng);
  }
  uint64_t binomial(uint64_t n, double p) {
    p = std::clamp(p, 0.0, 1.0);
    return std::binomial_distribution<uint64_t>(n, p)(rng);
  }
  double uniform(double a, double b) { return std::uniform_real_distribution<>(a, b)(rng); }
  // Adds one 100 ms window of traffic.
  void window(Counters& c, double rps, double share, double p_canary, double p_stable) {
    const uint64_t n = poisson(rps * 0.1);
    const uint64_t nc = binomial(n, share);
    const uint64_t ns = n - nc;
    const uint64_t ec = binomial(nc, p_canary), es = binomial(ns, p_stable);
    c.canary.requests += nc;
    c.canary.status_5xx += ec;
    c.canary.status_2xx += nc - ec;
    c.stable.requests += ns;
    c.stable.status_5xx += es;
    c.stable.status_2xx += ns - es;
  }
};

constexpr double kMaxErrorRate = 0.05;

TEST(SequentialErrorTest, NoFalseRollbackInAThousandGoodCanariesWithRealisticNoise) {
  SequentialSpec spec;  // the defaults: α 0.001, ratio 20, every 100 ms
  int false_rollbacks = 0;
  uint64_t looks = 0;
  for (uint64_t run = 0; run < 1000; ++run) {
    Sim sim(1000 + run);
    SequentialErrorCheck check(spec);
    Counters c;
    check.start_from(c.canary, &c.stable);
    // Each run its own service: traffic from 20 to 1,000 rps, a base error rate from 0 to
    // 3% shared by both releases (a good canary fails like stable does).
    const double rps = sim.uniform(20, 1000);
    const double base = sim.uniform(0, 0.03);
    // A third of the runs have an incident of a shared dependency: 2 s at 30% errors.
    const bool incident = sim.uniform(0, 1) < 0.33;
    const int incident_at = static_cast<int>(sim.uniform(0, 550));
    // 10% for 20 s, 25% for 20 s, 50% for 20 s: ten looks a second, 600 looks.
    for (int w = 0; w < 600; ++w) {
      const double share = w < 200 ? 0.10 : w < 400 ? 0.25 : 0.50;
      // Traffic swings ±40% window to window; the error rate of each window swings too,
      // the same for both releases (load, time of day, a slow database).
      const double load = rps * sim.uniform(0.6, 1.4);
      double p = base * sim.uniform(0.5, 1.5);
      if (incident && w >= incident_at && w < incident_at + 20) p = 0.30;
      sim.window(c, load, share, p, p);
      check.observe(c.canary, &c.stable);
      ++looks;
      if (check.verdict(kMaxErrorRate)) {
        ++false_rollbacks;
        ADD_FAILURE() << "run " << run << ": " << check.verdict(kMaxErrorRate)->reasons[0];
        break;
      }
    }
  }
  EXPECT_EQ(false_rollbacks, 0);
  EXPECT_EQ(looks, 600'000u);
}

TEST(SequentialErrorTest, AClearlyBadCanaryIsStoppedAfterAHandfulOfRequests) {
  // The scenario of issue 14: ~400 rps, 10% canary, canary failing half its requests.
  SequentialSpec spec;
  std::vector<double> ms_to_decision, requests_to_decision;
  for (uint64_t run = 0; run < 200; ++run) {
    Sim sim(50'000 + run);
    SequentialErrorCheck check(spec);
    Counters c;
    check.start_from(c.canary, &c.stable);
    const double base = sim.uniform(0, 0.01);
    int decided_at = -1;
    for (int w = 0; w < 600 && decided_at < 0; ++w) {
      sim.window(c, 400 * sim.uniform(0.8, 1.2), 0.10, 0.5, base);
      check.observe(c.canary, &c.stable);
      if (auto v = check.verdict(kMaxErrorRate)) {
        decided_at = w;
        EXPECT_EQ(v->metrics.value("test", ""), "sprt");
        EXPECT_NE(v->reasons[0].find("sequential test"), std::string::npos);
      }
    }
    ASSERT_GE(decided_at, 0) << "run " << run << " never decided";
    ms_to_decision.push_back((decided_at + 1) * 100.0);
    requests_to_decision.push_back(static_cast<double>(c.canary.requests));
  }
  std::sort(ms_to_decision.begin(), ms_to_decision.end());
  std::sort(requests_to_decision.begin(), requests_to_decision.end());
  const double p50_ms = ms_to_decision[100], p95_ms = ms_to_decision[190];
  const double p50_req = requests_to_decision[100];
  // Simulated time, not wall clock: the evidence needed, in 100 ms looks.
  EXPECT_LE(p95_ms, 500) << "p50 " << p50_ms << " ms";
  EXPECT_LE(p50_req, 25) << "canary requests before the decision";
  std::cout << "bad canary: decision after p50 " << p50_ms << " ms / p95 " << p95_ms
            << " ms of simulated traffic, p50 " << p50_req << " canary requests\n";
}

TEST(SequentialErrorTest, ACanaryWithinTheAllowedRateIsNotStoppedForBeatingAFlawlessStable) {
  SequentialSpec spec;
  Sim sim(7);
  SequentialErrorCheck check(spec);
  Counters c;
  for (int w = 0; w < 600; ++w) {
    sim.window(c, 400, 0.2, 0.02, 0.0);  // 2% vs 0%: worse, but within max 5%
    check.observe(c.canary, &c.stable);
    EXPECT_FALSE(check.verdict(kMaxErrorRate).has_value()) << "look " << w;
  }
  EXPECT_TRUE(check.test().crossed()) << "the test itself does see the difference";
}

TEST(SequentialErrorTest, NoBaselineOrOnlyOneReleaseServingIsNoEvidence) {
  SequentialErrorCheck check(SequentialSpec{});
  Counters c;
  for (int w = 1; w <= 100; ++w) {
    c.canary.requests = 10 * w;
    c.canary.status_5xx = 5 * w;
    check.observe(c.canary, nullptr);
  }
  EXPECT_EQ(check.test().log_lr(), 0);
  EXPECT_FALSE(check.verdict(kMaxErrorRate).has_value());
}

TEST(SequentialErrorTest, ARouterRestartStartsOverInsteadOfCountingNegativeTraffic) {
  SequentialErrorCheck check(SequentialSpec{});
  ReleaseStats canary, stable;
  canary.requests = 1000;
  stable.requests = 9000;
  check.observe(canary, &stable);
  canary.requests = 10;  // restarted
  canary.status_5xx = 0;
  stable.requests = 90;
  check.observe(canary, &stable);
  EXPECT_EQ(check.test().canary_requests(), 0u);
  canary.requests = 20;
  canary.status_5xx = 5;
  stable.requests = 180;
  check.observe(canary, &stable);
  EXPECT_EQ(check.test().canary_requests(), 10u);
  EXPECT_EQ(check.test().canary_errors(), 5u);
  EXPECT_GT(check.test().log_lr(), 0);
}

TEST(ErrorSprt, LikelihoodRatioFollowsWhereTheErrorsComeFrom) {
  ErrorSprt t(1e-4, 10);
  EXPECT_NEAR(t.threshold(), std::log(1e4), 1e-9);
  EXPECT_FALSE(t.crossed());
  // q = 0.1; p1 = 10·0.1 / (10·0.1 + 0.9) = 1/1.9.
  t.add(100, 1, 900, 0);
  EXPECT_NEAR(t.log_lr(), std::log((1 / 1.9) / 0.1), 1e-9);
  t.add(100, 0, 900, 1);
  EXPECT_NEAR(t.log_lr(), std::log((1 / 1.9) / 0.1) + std::log((1 - 1 / 1.9) / 0.9), 1e-9);
}

}  // namespace
}  // namespace ferry
