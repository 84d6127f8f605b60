// Routing: weights, weight changes under load, pinning, retries, draining.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <future>
#include <map>

#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::dead_port;
using testing_router::served_by;
using testing_router::TestBackend;
using testing_router::TestClient;
namespace http = testing_router::http;

class RouterRouting : public ::testing::Test {
 protected:
  void SetUp() override {
    router_ = std::make_unique<Router>(RouterOptions{});
    ASSERT_TRUE(router_->start().ok());
  }
  std::unique_ptr<Router> router_;
  TestBackend v1a_{"v1a"}, v1b_{"v1b"}, v2a_{"v2a"};
};

TEST_F(RouterRouting, NoBackendAnswers503WithShortBody) {
  TestClient c(router_->port());
  auto r = c.get("/");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_FALSE(r.body().empty());
  EXPECT_LT(r.body().size(), 100u);
  // A weighted release without backends is no route either.
  router_->set_table({{{"v1", 100}}, {}});
  EXPECT_EQ(c.get("/").result_int(), 503);
}

TEST_F(RouterRouting, SplitsByWeightAcrossReleasesAndRoundRobinsBackends) {
  router_->set_table({{{"v1", 90}, {"v2", 10}},
                      {v1a_.route("a", "v1"), v1b_.route("b", "v1"), v2a_.route("c", "v2")}});
  TestClient c(router_->port());
  std::map<std::string, int> by_release, by_backend;
  for (int i = 0; i < 1000; ++i) {
    auto r = c.get("/");
    ASSERT_EQ(r.result_int(), 200);
    ++by_release[served_by(r)];
    ++by_backend[r.body()];
  }
  EXPECT_NEAR(by_release["v1"], 900, 30);
  EXPECT_NEAR(by_release["v2"], 100, 30);
  // Round-robin inside v1.
  EXPECT_NEAR(by_backend["v1a"], by_backend["v1b"], 10);
  EXPECT_EQ(by_backend["v2a"], by_release["v2"]);
}

TEST_F(RouterRouting, ZeroWeightReleaseGetsNothingButCanBePinned) {
  RouteTable t{{{"v1", 100}, {"v2", 0}}, {v1a_.route("a", "v1"), v2a_.route("c", "v2")}};
  t.policy.pin_from = {"127.0.0.1/32"};  // pinning is off unless allowed
  router_->set_table(t);
  TestClient c(router_->port());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(served_by(c.get("/")), "v1");
  auto pinned = c.get("/", {{"x-ferry-release", "v2"}});
  EXPECT_EQ(pinned.result_int(), 200);
  EXPECT_EQ(served_by(pinned), "v2");
  EXPECT_EQ(pinned.body(), "v2a");
  // A pinned release with no backend is refused, not sent elsewhere.
  EXPECT_EQ(c.get("/", {{"x-ferry-release", "v9"}}).result_int(), 503);
}

TEST_F(RouterRouting, NewTableAppliesToTheNextRequestOnAKeptAliveConnection) {
  router_->set_table({{{"v1", 100}}, {v1a_.route("a", "v1"), v2a_.route("c", "v2")}});
  TestClient c(router_->port());
  EXPECT_EQ(served_by(c.get("/")), "v1");
  router_->set_table({{{"v2", 100}}, {v1a_.route("a", "v1"), v2a_.route("c", "v2")}});
  EXPECT_EQ(served_by(c.get("/")), "v2");
  EXPECT_EQ(router_->table().weights.at("v2"), 100);
}

TEST_F(RouterRouting, WeightSwitchUnderConcurrentLoadFailsNothing) {
  std::vector<RouteBackend> backends = {v1a_.route("a", "v1"), v1b_.route("b", "v1"),
                                        v2a_.route("c", "v2")};
  router_->set_table({{{"v1", 100}, {"v2", 0}}, backends});
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      TestClient c(router_->port());
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (!done && std::chrono::steady_clock::now() < until) {
        auto r = c.get("/");
        (r.result_int() == 200 ? ok : failed)++;
      }
    });
  // Canary steps up and back down while requests flow: each step stays until the clients
  // got at least 8 answers under it (however slow the machine), at most 10 s.
  for (int w : {0, 10, 25, 50, 75, 100, 50, 0, 100}) {
    router_->set_table({{{"v1", 100 - w}, {"v2", w}}, backends});
    const int seen = ok.load() + failed.load();
    const auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ok.load() + failed.load() < seen + 8 && std::chrono::steady_clock::now() < bound)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  done = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 50);
  // The last table (v2 only) serves everything from now on.
  TestClient c(router_->port());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(served_by(c.get("/")), "v2");
}

TEST_F(RouterRouting, IdempotentRequestsAreRetriedOnALiveBackend) {
  RouteBackend dead{"dead", "v1", "127.0.0.1", dead_port()};
  router_->set_table({{{"v1", 100}}, {dead, v1a_.route("a", "v1")}});
  TestClient c(router_->port());
  for (int i = 0; i < 50; ++i) {
    auto r = c.get("/");
    ASSERT_EQ(r.result_int(), 200) << "request " << i;
    EXPECT_EQ(r.body(), "v1a");
  }
  auto stats = router_->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].status_2xx, 50u);
  EXPECT_EQ(stats[0].upstream_errors, 0u);
}

TEST_F(RouterRouting, NonIdempotentConnectFailureIs502) {
  RouteBackend dead{"dead", "v1", "127.0.0.1", dead_port()};
  RouteTable t{{{"v1", 100}}, {dead, v1a_.route("a", "v1")}};
  t.policy.trusted_proxies = {"127.0.0.0/8"};  // x-ferry-idempotent counts from these only
  router_->set_table(t);
  TestClient c(router_->port());
  int bad_gateway = 0, ok = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = c.request(http::verb::post, "/echo", {}, "x");
    if (r.result_int() == 502) ++bad_gateway;
    if (r.result_int() == 200) ++ok;
  }
  EXPECT_EQ(bad_gateway, 10);  // round-robin: every other POST went to the dead backend
  EXPECT_EQ(ok, 10);
  // Marked idempotent, a POST is retried too.
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(c.request(http::verb::post, "/echo", {{"x-ferry-idempotent", "1"}}, "x").result_int(),
              200);
  auto stats = router_->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].upstream_errors, 10u);
  EXPECT_EQ(stats[0].status_5xx, 10u);
}

TEST_F(RouterRouting, Upstream503IsRetriedOnAnotherInstance) {
  router_->set_table({{{"v1", 100}}, {v1a_.route("a", "v1"), v1b_.route("b", "v1")}});
  TestClient c(router_->port());
  // /status/503 fails on every backend: after one retry the client gets the 503.
  auto r = c.get("/status/503");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(v1a_.requests() + v1b_.requests(), 2);
  // A POST is not retried.
  auto p = c.request(http::verb::post, "/status/503", {}, "x");
  EXPECT_EQ(p.result_int(), 503);
  EXPECT_EQ(v1a_.requests() + v1b_.requests(), 3);
}

TEST_F(RouterRouting, RemovedBackendDrainsItsSlowRequest) {
  router_->set_table({{{"v1", 100}}, {v1a_.route("a", "v1")}});
  std::promise<int> status;
  std::thread slow([&] {
    TestClient c(router_->port());
    status.set_value(c.get("/slow?ms=800").result_int());
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (router_->in_flight("a") == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(router_->in_flight("a"), 1);
  router_->set_table({{{"v1", 100}}, {v1b_.route("b", "v1")}});
  EXPECT_EQ(router_->in_flight("a"), 1);  // still counted after removal
  TestClient c(router_->port());
  EXPECT_EQ(c.get("/").body(), "v1b");  // new requests avoid it
  auto result = status.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(result.get(), 200);
  slow.join();
  EXPECT_EQ(router_->in_flight("a"), 0);
  EXPECT_EQ(router_->in_flight("unknown"), 0);
}

TEST_F(RouterRouting, UpstreamConnectionsAreKeptAlive) {
  router_->set_table({{{"v1", 100}}, {v1a_.route("a", "v1")}});
  TestClient c(router_->port());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(v1a_.requests(), 100);
  EXPECT_EQ(v1a_.connections(), 1);
}

TEST_F(RouterRouting, ClosedUpstreamConnectionsAreNotReused) {
  router_->set_table({{{"v1", 100}}, {v1a_.route("a", "v1")}});
  TestClient c(router_->port());
  for (int i = 0; i < 20; ++i) {
    // The backend closes the pooled connection right after answering. A GET sent at
    // once may find it closing and is sent again on a new connection.
    ASSERT_EQ(c.get("/rude").result_int(), 200);
    ASSERT_EQ(c.get("/").result_int(), 200);
    // A POST is not sent twice; once the close has arrived (as with a backend's idle
    // timeout) the router sees it before reusing the connection.
    ASSERT_EQ(c.request(http::verb::post, "/rude", {}, "x").result_int(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_EQ(c.request(http::verb::post, "/echo", {}, "x").result_int(), 200);
  }
}

}  // namespace
}  // namespace ferry
