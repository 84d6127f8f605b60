// Trust: pinning is off unless a client is in the allowlist or holds a signed, expiring
// token; pinned requests never reach the analysis counters; forwarding fields and
// x-ferry-idempotent are believed only from trusted proxies.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

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

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RouterTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    RouterOptions o;
    o.key = kRouterKey;
    o.app = kRouterApp;
    router_ = std::make_unique<Router>(o);
    ASSERT_TRUE(router_->start().ok());
  }
  // v1 takes all weighted traffic; v2 (weight 0) can only be reached by pinning.
  void table(RouterSpec policy) {
    RouteTable t{{{"v1", 100}, {"v2", 0}}, {v1_.route("a", "v1"), v2_.route("b", "v2")}};
    t.policy = std::move(policy);
    router_->set_table(t);
  }
  ReleaseStats stats_of(const std::string& release) {
    for (const auto& s : router_->stats())
      if (s.release == release) return s;
    return {};
  }
  std::unique_ptr<Router> router_;
  TestBackend v1_{"v1a"}, v2_{"v2a"};
};

TEST_F(RouterTrust, PinningIsOffByDefaultAndThePinHeaderIsNotForwarded) {
  table({});
  TestClient c(router_->port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.get("/headers", {{"x-ferry-release", "v2"}});
    ASSERT_EQ(r.result_int(), 200);
    EXPECT_EQ(served_by(r), "v1");
    EXPECT_EQ(r.body().find("x-ferry-release"), std::string::npos) << r.body();
  }
  EXPECT_EQ(v2_.requests(), 0);
}

TEST_F(RouterTrust, PinningFromAnAllowlistedSourceOnly) {
  RouterSpec other;
  other.pin_from = {"10.0.0.0/8", "2001:db8::/32"};
  table(other);
  TestClient c(router_->port());
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", "v2"}})), "v1");
  RouterSpec loopback;
  loopback.pin_from = {"127.0.0.0/8"};
  table(loopback);
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", "v2"}})), "v2");
}

TEST_F(RouterTrust, PinTokensMustBeSignedForThisAppAndUnexpired) {
  RouterSpec p;
  p.pin_tokens = true;
  table(p);
  TestClient c(router_->port());
  std::string good = routing::make_pin_token(kRouterKey, kRouterApp, "v2", now_s() + 3600);
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", good}})), "v2");
  // A plain release name is not a token (and the client is not allowlisted).
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", "v2"}})), "v1");
  std::string expired = routing::make_pin_token(kRouterKey, kRouterApp, "v2", now_s() - 1);
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", expired}})), "v1");
  std::string other_app = routing::make_pin_token(kRouterKey, "web.staging", "v2", now_s() + 3600);
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", other_app}})), "v1");
  std::string other_key =
      routing::make_pin_token(std::string(32, 'k'), kRouterApp, "v2", now_s() + 60);
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", other_key}})), "v1");
  // Edited: a longer lifetime or another release breaks the signature.
  std::string longer = good;
  longer.replace(5, 1, "9");
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", longer}})), "v1");
  std::string retargeted = good.substr(0, good.size() - 2) + "v1";
  EXPECT_EQ(served_by(c.get("/", {{"x-ferry-release", retargeted}})), "v1");
}

// The measured attack: flooding pinned requests at a healthy path diluted a bad canary's
// error rate. Pinned requests now count only in pinned_requests / pinned_5xx.
TEST_F(RouterTrust, PinnedRequestsNeverEnterTheAnalysisCounters) {
  RouterSpec p;
  p.pin_from = {"127.0.0.1"};
  table(p);
  TestClient c(router_->port());
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(c.get("/healthz", {{"x-ferry-release", "v2"}}).result_int(), 200);
  for (int i = 0; i < 5; ++i) c.get("/status/500", {{"x-ferry-release", "v2"}});
  ReleaseStats v2 = stats_of("v2");
  EXPECT_EQ(v2.requests, 0u);
  EXPECT_EQ(v2.status_2xx, 0u);
  EXPECT_EQ(v2.status_5xx, 0u);
  EXPECT_EQ(v2.sample_seq, 0u);
  EXPECT_EQ(v2.pinned_requests, 35u);
  EXPECT_EQ(v2.pinned_5xx, 5u);
  EXPECT_EQ(stats_of("v1").requests, 0u);
}

TEST_F(RouterTrust, ForwardingFieldsFromUntrustedClientsAreReplacedOrDropped) {
  table({});
  TestClient c(router_->port());
  auto r = c.get("/headers", {{"x-forwarded-for", "203.0.113.7"},
                              {"x-forwarded-proto", "https"},
                              {"x-forwarded-host", "evil.example"},
                              {"forwarded", "for=203.0.113.7"},
                              {"x-ferry-idempotent", "1"}});
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_NE(r.body().find("X-Forwarded-For: 127.0.0.1\n"), std::string::npos) << r.body();
  for (const char* gone :
       {"203.0.113.7", "x-forwarded-proto", "x-forwarded-host", "forwarded:", "x-ferry-idempotent"})
    EXPECT_EQ(r.body().find(gone), std::string::npos) << gone << " in " << r.body();

  RouterSpec trusted;
  trusted.trusted_proxies = {"127.0.0.1/32"};
  table(trusted);
  r = c.get("/headers", {{"x-forwarded-for", "203.0.113.7"}, {"x-forwarded-proto", "https"}});
  EXPECT_NE(r.body().find("X-Forwarded-For: 203.0.113.7, 127.0.0.1\n"), std::string::npos)
      << r.body();
  EXPECT_NE(r.body().find("x-forwarded-proto: https"), std::string::npos) << r.body();
}

TEST_F(RouterTrust, IdempotentMarkFromAnUntrustedClientDoesNotMakeAPostRetried) {
  RouteBackend dead{"dead", "v1", "127.0.0.1", dead_port()};
  RouteTable t{{{"v1", 100}}, {dead, v1_.route("a", "v1")}};
  router_->set_table(t);
  TestClient c(router_->port());
  int bad_gateway = 0;
  for (int i = 0; i < 10; ++i)
    if (c.request(http::verb::post, "/echo", {{"x-ferry-idempotent", "1"}}, "x").result_int() ==
        502)
      ++bad_gateway;
  EXPECT_EQ(bad_gateway, 5);  // round-robin onto the dead backend, never retried
  t.policy.trusted_proxies = {"127.0.0.1"};
  router_->set_table(t);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(c.request(http::verb::post, "/echo", {{"x-ferry-idempotent", "1"}}, "x").result_int(),
              200);
}

TEST(RouterTrustValues, AddressRanges) {
  auto r = [](std::string_view s) {
    auto c = routing::parse_cidr(s);
    EXPECT_TRUE(c.ok()) << s;
    return std::vector<routing::Cidr>{*c};
  };
  EXPECT_TRUE(routing::in_ranges("10.1.2.3", r("10.0.0.0/8")));
  EXPECT_FALSE(routing::in_ranges("11.1.2.3", r("10.0.0.0/8")));
  EXPECT_TRUE(routing::in_ranges("::ffff:127.0.0.1", r("127.0.0.1")));
  EXPECT_TRUE(routing::in_ranges("192.168.1.77", r("192.168.1.64/26")));
  EXPECT_FALSE(routing::in_ranges("192.168.1.128", r("192.168.1.64/26")));
  EXPECT_TRUE(routing::in_ranges("2001:db8::5", r("2001:db8::/32")));
  EXPECT_FALSE(routing::in_ranges("2001:db9::5", r("2001:db8::/32")));
  EXPECT_TRUE(routing::in_ranges("8.8.8.8", r("0.0.0.0/0")));
  EXPECT_FALSE(routing::in_ranges("::1", r("0.0.0.0/0")));  // IPv4 ranges hold IPv4 only
  EXPECT_FALSE(routing::in_ranges("not-an-ip", r("0.0.0.0/0")));
  EXPECT_FALSE(routing::in_ranges("10.0.0.1", {}));
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/-1",
                          "10.0.0.0/8x", "example.com", "10.0.0.0/8/8"}) {
    auto c = routing::parse_cidr(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("is not an address range"), std::string::npos);
  }
}

TEST(RouterTrustValues, AffinityValuesCannotBeForged) {
  std::string v = routing::make_affinity_value(kRouterKey, kRouterApp, "v2");
  EXPECT_EQ(routing::verify_affinity_value(kRouterKey, kRouterApp, v), "v2");
  EXPECT_EQ(routing::verify_affinity_value(kRouterKey, "web.staging", v), "");
  EXPECT_EQ(routing::verify_affinity_value(std::string(32, 'x'), kRouterApp, v), "");
  std::string forged = "v3" + v.substr(2);
  EXPECT_EQ(routing::verify_affinity_value(kRouterKey, kRouterApp, forged), "");
  EXPECT_EQ(routing::verify_affinity_value(kRouterKey, kRouterApp, "v2"), "");
  EXPECT_EQ(routing::verify_affinity_value(kRouterKey, kRouterApp, ""), "");
  EXPECT_EQ(routing::verify_affinity_value(kRouterKey, kRouterApp, std::string(1000, 'a')), "");
}

TEST(RouterTrustValues, KeyFileIsMadeOncePrivateAndReused) {
  auto dir = std::filesystem::temp_directory_path() / ("ferry-key-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "router.key").string();
  auto k1 = routing::load_router_key(path);
  ASSERT_TRUE(k1.ok()) << k1.status().message();
  EXPECT_EQ(k1->size(), 32u);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k2 = routing::load_router_key(path);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(*k1, *k2);
  std::ofstream(path, std::ios::trunc) << "short";
  auto k3 = routing::load_router_key(path);
  ASSERT_FALSE(k3.ok());
  EXPECT_NE(k3.status().message().find(path), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
