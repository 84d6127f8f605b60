// Game-day faults (router/fault.h): the share of requests hit, the end by itself at the
// setting's duration, the bounds of a setting, and the router answering/delaying a share
// of real requests while counting them apart from the release counters.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/fault.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::TestBackend;
using testing_router::TestClient;

FaultSetting errors_of(double share, int64_t duration_ms = 60'000) {
  FaultSetting f;
  f.experiment = "chaos-test";
  f.error_share = share;
  f.duration_ms = duration_ms;
  return f;
}

struct FakeMs {
  std::atomic<int64_t> now{1'000'000};
  std::function<int64_t()> fn() {
    return [this] { return now.load(); };
  }
};

TEST(FaultInjector, NothingSetInjectsNothing) {
  FaultInjector f;
  for (int i = 0; i < 1000; ++i) {
    auto a = f.decide();
    EXPECT_EQ(a.error_status, 0);
    EXPECT_EQ(a.delay_ms, 0);
  }
  EXPECT_FALSE(f.report().active);
  EXPECT_EQ(f.report().counters.seen, 0u);
}

TEST(FaultInjector, ErrorsHitTheirShareOfRequests) {
  FakeMs clock;
  for (double share : {0.05, 0.10, 0.5}) {
    FaultInjector f(clock.fn(), nullptr, 42);
    ASSERT_TRUE(f.set(errors_of(share)).ok());
    int errors = 0;
    const int n = 100'000;
    for (int i = 0; i < n; ++i)
      if (f.decide().error_status == 503) ++errors;
    // Binomial(n, share): 5 standard deviations are under 0.8% of n at these shares.
    EXPECT_NEAR(static_cast<double>(errors) / n, share, 0.008) << "share " << share;
    auto r = f.report();
    EXPECT_TRUE(r.active);
    EXPECT_EQ(r.counters.seen, static_cast<uint64_t>(n));
    EXPECT_EQ(r.counters.errored, static_cast<uint64_t>(errors));
    EXPECT_EQ(r.counters.delayed, 0u);
  }
}

TEST(FaultInjector, LatencyHitsItsShareWithTheSetDelay) {
  FakeMs clock;
  FaultInjector f(clock.fn(), nullptr, 7);
  FaultSetting s;
  s.experiment = "chaos-lat";
  s.latency_ms = 200;
  s.latency_share = 0.1;
  s.duration_ms = 60'000;
  ASSERT_TRUE(f.set(s).ok());
  int delayed = 0;
  for (int i = 0; i < 50'000; ++i) {
    auto a = f.decide();
    EXPECT_EQ(a.error_status, 0);
    if (a.delay_ms > 0) {
      EXPECT_EQ(a.delay_ms, 200);
      ++delayed;
    }
  }
  EXPECT_NEAR(delayed / 50'000.0, 0.1, 0.01);
  EXPECT_EQ(f.report().counters.delay_ms_total, static_cast<uint64_t>(delayed) * 200);
}

TEST(FaultInjector, AllAndNoneAreExact) {
  FakeMs clock;
  FaultInjector f(clock.fn());
  auto s = errors_of(1.0);
  s.error_status = 500;
  ASSERT_TRUE(f.set(s).ok());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(f.decide().error_status, 500);
}

TEST(FaultInjector, EndsByItselfAtItsDuration) {
  FakeMs clock;
  FaultInjector f(clock.fn(), [] { return int64_t{5'000'000}; });
  ASSERT_TRUE(f.set(errors_of(1.0, 120'000)).ok());
  EXPECT_EQ(f.report().setting.expires_at_ms, 5'000'000 + 120'000);
  EXPECT_EQ(f.decide().error_status, 503);
  clock.now += 119'999;
  EXPECT_EQ(f.decide().error_status, 503);
  EXPECT_TRUE(f.report().active);
  clock.now += 1;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(f.decide().error_status, 0);
  auto r = f.report();
  EXPECT_FALSE(r.active);
  // The counters of the experiment stay readable after its end (the report reads them).
  EXPECT_EQ(r.setting.experiment, "chaos-test");
  EXPECT_EQ(r.counters.errored, 2u);
  EXPECT_EQ(r.counters.seen, 2u);
}

TEST(FaultInjector, ClearEndsOnlyTheNamedExperiment) {
  FakeMs clock;
  FaultInjector f(clock.fn());
  ASSERT_TRUE(f.set(errors_of(1.0)).ok());
  EXPECT_FALSE(f.clear("chaos-other"));
  EXPECT_EQ(f.decide().error_status, 503);
  EXPECT_TRUE(f.clear("chaos-test"));
  EXPECT_EQ(f.decide().error_status, 0);
  EXPECT_FALSE(f.clear("chaos-test"));  // already ended
}

TEST(FaultInjector, ANewSettingStartsItsCountersAfresh) {
  FakeMs clock;
  FaultInjector f(clock.fn());
  ASSERT_TRUE(f.set(errors_of(1.0)).ok());
  for (int i = 0; i < 10; ++i) (void)f.decide();
  auto s = errors_of(1.0);
  s.experiment = "chaos-two";
  ASSERT_TRUE(f.set(s).ok());
  (void)f.decide();
  EXPECT_EQ(f.report().counters.errored, 1u);
  EXPECT_EQ(f.report().setting.experiment, "chaos-two");
}

TEST(FaultInjector, BadSettingsAreRefusedAndChangeNothing) {
  FakeMs clock;
  FaultInjector f(clock.fn());
  ASSERT_TRUE(f.set(errors_of(0.5)).ok());
  std::vector<std::pair<std::string, FaultSetting>> bad;
  auto add = [&](const std::string& what, auto change) {
    FaultSetting s = errors_of(0.5);
    change(s);
    bad.push_back({what, s});
  };
  add("share above 1", [](FaultSetting& s) { s.error_share = 1.5; });
  add("negative share", [](FaultSetting& s) { s.error_share = -0.1; });
  add("NaN share", [](FaultSetting& s) { s.error_share = std::nan(""); });
  add("infinite share", [](FaultSetting& s) { s.latency_share = INFINITY; });
  add("latency share without latency", [](FaultSetting& s) { s.latency_share = 0.2; });
  add("latency too long", [](FaultSetting& s) {
    s.latency_ms = kMaxFaultLatencyMs + 1;
    s.latency_share = 0.1;
  });
  add("negative latency", [](FaultSetting& s) { s.latency_ms = -5; });
  add("status not 5xx", [](FaultSetting& s) { s.error_status = 200; });
  add("duration over an hour", [](FaultSetting& s) { s.duration_ms = kMaxFaultDurationMs + 1; });
  add("no duration", [](FaultSetting& s) { s.duration_ms = 0; });
  add("no fault", [](FaultSetting& s) { s.error_share = 0; });
  add("empty id", [](FaultSetting& s) { s.experiment = ""; });
  add("id with a slash", [](FaultSetting& s) { s.experiment = "../etc"; });
  add("id too long", [](FaultSetting& s) { s.experiment = std::string(65, 'a'); });
  for (const auto& [what, s] : bad) {
    Status st = f.set(s);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << what;
  }
  EXPECT_EQ(f.report().setting.experiment, "chaos-test");
  EXPECT_DOUBLE_EQ(f.report().setting.error_share, 0.5);
}

TEST(FaultSettingJson, WrongTypesAndHugeNumbersThrowInsteadOfWrapping) {
  for (const char* text : {R"({"experiment": 5})", R"({"experiment": "x", "latency_ms": 1e30})",
                           R"({"experiment": "x", "duration_ms": "60s"})",
                           R"({"experiment": "x", "error_status": 18446744073709551615})",
                           R"({"experiment": "x", "error_share": "all"})", R"([1, 2])"}) {
    FaultSetting f;
    EXPECT_ANY_THROW(from_json(Json::parse(text), f)) << text;
  }
  FaultSetting f;
  from_json(Json::parse(R"({"experiment": "x", "error_share": 0.25, "duration_ms": 60000})"), f);
  EXPECT_DOUBLE_EQ(f.error_share, 0.25);
  EXPECT_EQ(f.duration_ms, 60000);
  EXPECT_TRUE(f.validate().ok());
}

// The router answers the injected share itself, never reaching a backend, and leaves those
// requests out of the release counters; with faults ended it serves everything again.
TEST(RouterFaults, TheRouterAnswersAShareItselfAndCountsItApart) {
  auto faults = std::make_shared<FaultInjector>(nullptr, nullptr, 3);
  RouterOptions o;
  o.faults = faults;
  Router router(o);
  ASSERT_TRUE(router.start().ok());
  TestBackend b("v1a");
  router.set_table({{{"v1", 100}}, {b.route("a", "v1")}});
  ASSERT_TRUE(faults->set(errors_of(0.2)).ok());
  TestClient c(router.port());
  int injected = 0, ok = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    auto r = c.get("/");
    if (r.result_int() == 503) {
      ++injected;
      EXPECT_NE(r.body().find("ferry chaos"), std::string::npos);
    } else if (r.result_int() == 200) {
      ++ok;
    }
  }
  EXPECT_EQ(injected + ok, n);
  EXPECT_NEAR(injected / static_cast<double>(n), 0.2, 0.05);
  EXPECT_EQ(b.requests(), ok);  // the injected ones never reached the backend
  auto stats = router.stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].requests, static_cast<uint64_t>(ok));
  EXPECT_EQ(stats[0].status_5xx, 0u);
  EXPECT_EQ(faults->report().counters.errored, static_cast<uint64_t>(injected));
  EXPECT_EQ(faults->report().counters.seen, static_cast<uint64_t>(n));
  ASSERT_TRUE(faults->set(errors_of(1.0)).ok());
  EXPECT_EQ(c.get("/").result_int(), 503);
  faults->clear();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(c.get("/").result_int(), 200);
}

TEST(RouterFaults, InjectedDelayHoldsTheRequestThenProxiesIt) {
  auto faults = std::make_shared<FaultInjector>();
  RouterOptions o;
  o.faults = faults;
  Router router(o);
  ASSERT_TRUE(router.start().ok());
  TestBackend b("v1a");
  router.set_table({{{"v1", 100}}, {b.route("a", "v1")}});
  FaultSetting s;
  s.experiment = "chaos-lat";
  s.latency_ms = 300;
  s.latency_share = 1.0;
  s.duration_ms = 60'000;
  ASSERT_TRUE(faults->set(s).ok());
  TestClient c(router.port());
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.get("/");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "v1a");
  // A lower bound only: the request was held at least the injected delay.
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_EQ(faults->report().counters.delayed, 1u);
}

TEST(RouterFaults, StopDuringAnInjectedDelayDoesNotWaitItOut) {
  auto faults = std::make_shared<FaultInjector>();
  RouterOptions o;
  o.faults = faults;
  auto router = std::make_unique<Router>(o);
  ASSERT_TRUE(router->start().ok());
  TestBackend b("v1a");
  router->set_table({{{"v1", 100}}, {b.route("a", "v1")}});
  FaultSetting s;
  s.experiment = "chaos-lat";
  s.latency_ms = kMaxFaultLatencyMs;
  s.latency_share = 1.0;
  s.duration_ms = 60'000;
  ASSERT_TRUE(faults->set(s).ok());
  std::thread client([port = router->port()] {
    TestClient c(port);
    try {
      (void)c.get("/");
    } catch (...) {
    }
  });
  for (int i = 0; i < 500 && faults->report().counters.delayed == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(faults->report().counters.delayed, 1u);
  auto t0 = std::chrono::steady_clock::now();
  router->stop();
  // stop() cancels the delay rather than waiting the 30 s out.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  client.join();
}

}  // namespace
}  // namespace ferry
