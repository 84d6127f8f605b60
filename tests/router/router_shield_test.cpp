// The canary shield and session affinity: a bad canary's failures on idempotent requests
// are answered by the stable release (and still counted against the canary), and users
// keep their release while weights change.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <map>

#include "router/router.h"
#include "router/test_backend.h"
#include "router/trust.h"

namespace ferry {
namespace {

using testing_router::dead_port;
using testing_router::kRouterApp;
using testing_router::kRouterKey;
using testing_router::served_by;
using testing_router::TestBackend;
using testing_router::TestClient;
namespace http = testing_router::http;

class RouterShield : public ::testing::Test {
 protected:
  void SetUp() override {
    RouterOptions o;
    o.key = kRouterKey;
    o.app = kRouterApp;
    router_ = std::make_unique<Router>(o);
    ASSERT_TRUE(router_->start().ok());
  }
  void table(int canary_weight, RouterSpec policy = {}, std::string stable = "v1",
             std::vector<RouteBackend> canary = {}) {
    RouteTable t;
    t.weights = {{"v1", 100 - canary_weight}, {"v2", canary_weight}};
    t.backends = {stable_.route("a", "v1")};
    if (canary.empty()) canary = {canary_.route("b", "v2")};
    for (auto& b : canary) t.backends.push_back(b);
    t.policy = std::move(policy);
    t.stable = std::move(stable);
    router_->set_table(t);
  }
  ReleaseStats stats_of(const std::string& release) {
    for (const auto& s : router_->stats())
      if (s.release == release) return s;
    return {};
  }
  std::unique_ptr<Router> router_;
  TestBackend stable_{"v1a"}, canary_{"v2a"};
};

TEST_F(RouterShield, BadCanaryIsInvisibleToGetTrafficButCountedForAnalysis) {
  canary_.fail_with(500);
  table(20);
  TestClient c(router_->port());
  std::map<int, int> statuses;
  for (int i = 0; i < 200; ++i) {
    auto r = c.get("/");
    ++statuses[r.result_int()];
    if (r.result_int() == 200) {
      EXPECT_EQ(r.body(), "v1a");
    }
  }
  EXPECT_EQ(statuses[200], 200) << "client-visible non-200: " << 200 - statuses[200];
  ReleaseStats v2 = stats_of("v2");
  EXPECT_NEAR(static_cast<double>(v2.status_5xx), 40, 5);  // a fifth went to the canary
  EXPECT_EQ(v2.requests, v2.status_5xx);
  EXPECT_EQ(v2.shielded, v2.status_5xx);
  ReleaseStats v1 = stats_of("v1");
  EXPECT_EQ(v1.status_2xx, 200u);  // its own share plus every shielded answer
  EXPECT_EQ(v1.shielded, 0u);
  EXPECT_EQ(canary_.requests(), static_cast<int>(v2.requests));
}

TEST_F(RouterShield, ACanaryThatCannotBeReachedIsShieldedToo) {
  table(50, {}, "v1", {RouteBackend{"dead", "v2", "127.0.0.1", dead_port()}});
  TestClient c(router_->port());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(c.get("/").result_int(), 200);
  ReleaseStats v2 = stats_of("v2");
  EXPECT_EQ(v2.upstream_errors, 10u);
  EXPECT_EQ(v2.status_5xx, 10u);
  EXPECT_EQ(v2.shielded, 10u);
}

TEST_F(RouterShield, NonIdempotentRequestsAreNeverRetried) {
  canary_.fail_with(500);
  table(50);
  TestClient c(router_->port());
  int failed = 0;
  for (int i = 0; i < 20; ++i)
    if (c.request(http::verb::post, "/echo", {}, "x").result_int() == 500) ++failed;
  EXPECT_EQ(failed, 10);
  EXPECT_EQ(stats_of("v2").shielded, 0u);
  EXPECT_EQ(stable_.requests(), 10);
}

TEST_F(RouterShield, ShieldOffLetsTheCanaryAnswer) {
  canary_.fail_with(500);
  RouterSpec off;
  off.shield = false;
  table(50, off);
  TestClient c(router_->port());
  int failed = 0;
  for (int i = 0; i < 20; ++i)
    if (c.get("/").result_int() == 500) ++failed;
  EXPECT_EQ(failed, 10);
  EXPECT_EQ(stats_of("v2").shielded, 0u);
}

TEST_F(RouterShield, TheStableReleaseIsNeverShielded) {
  stable_.fail_with(503);
  table(0);  // all traffic on the stable release: nothing to fall back to
  TestClient c(router_->port());
  EXPECT_EQ(c.get("/").result_int(), 503);
  EXPECT_EQ(stats_of("v1").shielded, 0u);
  EXPECT_EQ(canary_.requests(), 0);
}

TEST_F(RouterShield, WithoutANamedStableTheHeaviestReleaseIsStable) {
  canary_.fail_with(500);
  table(10, {}, "");
  TestClient c(router_->port());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(stats_of("v2").shielded, 5u);
}

// Affinity "cookie": each user keeps the release they first got while the canary goes
// 10 → 50; after the rollback (canary at 0) its users fall back to the split and get a
// new cookie.
TEST_F(RouterShield, CookieAffinityHoldsThroughWeightChangesAndResetsOnRollback) {
  RouterSpec p;
  p.affinity = "cookie";
  table(10, p);
  constexpr int kUsers = 200;
  std::vector<std::string> cookie(kUsers), release(kUsers);
  std::string prefix = "ferry_affinity=";
  auto cookie_of = [&](const http::response<http::string_body>& r) {
    std::string sc(r[http::field::set_cookie]);
    if (sc.rfind(prefix, 0) != 0) return std::string();
    return sc.substr(prefix.size(), sc.find(';') - prefix.size());
  };
  TestClient c(router_->port());
  for (int u = 0; u < kUsers; ++u) {
    auto r = c.get("/");
    ASSERT_EQ(r.result_int(), 200);
    release[u] = served_by(r);
    cookie[u] = cookie_of(r);
    ASSERT_FALSE(cookie[u].empty());
    EXPECT_NE(std::string(r[http::field::set_cookie]).find("HttpOnly"), std::string::npos);
  }
  int on_canary = static_cast<int>(std::count(release.begin(), release.end(), "v2"));
  EXPECT_NEAR(on_canary, 20, 3);

  table(50, p);
  for (int round = 0; round < 3; ++round)
    for (int u = 0; u < kUsers; ++u) {
      auto r = c.get("/", {{"cookie", "a=1; ferry_affinity=" + cookie[u] + "; b=2"}});
      ASSERT_EQ(served_by(r), release[u]) << "user " << u;
      EXPECT_TRUE(cookie_of(r).empty());  // a good cookie is not set again
    }

  table(0, p);  // rollback
  for (int u = 0; u < kUsers; ++u) {
    auto r = c.get("/", {{"cookie", "ferry_affinity=" + cookie[u]}});
    EXPECT_EQ(served_by(r), "v1");
    if (release[u] == "v2") {
      EXPECT_EQ(cookie_of(r), routing::make_affinity_value(kRouterKey, kRouterApp, "v1"));
    } else {
      EXPECT_TRUE(cookie_of(r).empty());
    }
  }
}

TEST_F(RouterShield, AForgedAffinityCookieIsIgnoredAndReplaced) {
  RouterSpec p;
  p.affinity = "cookie";
  table(10, p);
  TestClient c(router_->port());
  std::string good_v2 = routing::make_affinity_value(kRouterKey, kRouterApp, "v2");
  int canary = 0;
  for (int i = 0; i < 50; ++i) {
    // The signature of another release, and one made with another key.
    std::string forged =
        i % 2 ? "v2" + routing::make_affinity_value(kRouterKey, kRouterApp, "v1").substr(2)
              : routing::make_affinity_value(std::string(32, 'z'), kRouterApp, "v2");
    auto r = c.get("/", {{"cookie", "ferry_affinity=" + forged}});
    if (served_by(r) == "v2") ++canary;
    EXPECT_FALSE(std::string(r[http::field::set_cookie]).empty());
  }
  EXPECT_LT(canary, 15);  // the split (10%), not the forged release
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(served_by(c.get("/", {{"cookie", "ferry_affinity=" + good_v2}})), "v2");
}

TEST_F(RouterShield, HeaderAffinityKeepsAUserOnOneReleaseAndTheCanaryKeepsItsUsers) {
  RouterSpec p;
  p.affinity = "header:X-User-Id";
  table(10, p);
  TestClient c(router_->port());
  std::map<std::string, std::string> at10;
  for (int u = 0; u < 200; ++u) {
    std::string id = "user-" + std::to_string(u);
    std::string first = served_by(c.get("/", {{"x-user-id", id}}));
    for (int k = 0; k < 3; ++k) EXPECT_EQ(served_by(c.get("/", {{"x-user-id", id}})), first);
    at10[id] = first;
  }
  int canary = 0;
  for (auto& [id, rel] : at10) canary += rel == "v2";
  EXPECT_GT(canary, 5);
  EXPECT_LT(canary, 40);
  table(50, p);
  for (auto& [id, rel] : at10)
    if (rel == "v2") {
      EXPECT_EQ(served_by(c.get("/", {{"x-user-id", id}})), "v2") << id;
    }
  table(0, p);
  for (auto& [id, rel] : at10) EXPECT_EQ(served_by(c.get("/", {{"x-user-id", id}})), "v1");
}

}  // namespace
}  // namespace ferry
