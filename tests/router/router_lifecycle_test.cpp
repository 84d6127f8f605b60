// Lifecycle: several io threads, stopping with connections open, stats of many releases.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <future>
#include <map>

#include "router/io_pool.h"
#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::TestBackend;
using testing_router::TestClient;
namespace asio = testing_router::asio;
namespace http = testing_router::http;
using tcp = testing_router::tcp;

TEST(RouterLifecycle, SeveralIoThreadsShareTheTableAndCounters) {
  TestBackend a("a"), b("b");
  RouterOptions o;
  o.threads = 3;
  Router router(o);
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 50}, {"v2", 50}}, {a.route("a", "v1"), b.route("b", "v2")}});
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  std::mutex mu;
  std::map<std::string, int> by_release;
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&] {
      TestClient c(router.port());
      for (int i = 0; i < 100; ++i) {
        auto r = c.get("/");
        if (r.result_int() != 200) ++failed;
        std::lock_guard<std::mutex> lock(mu);
        ++by_release[std::string(r["x-ferry-release"])];
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_NEAR(by_release["v1"], 300, 60);
  EXPECT_NEAR(by_release["v2"], 300, 60);
  uint64_t total = 0;
  for (const auto& s : router.stats()) total += s.requests;
  EXPECT_EQ(total, 600u);
}

TEST(RouterLifecycle, StopReturnsWithConnectionsAndRequestsOpen) {
  TestBackend a("a");
  auto router = std::make_unique<Router>(RouterOptions{});
  ASSERT_TRUE(router->start().ok());
  router->set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  TestClient idle(router->port());
  ASSERT_EQ(idle.get("/").result_int(), 200);  // a kept-alive client connection
  std::promise<int> slow_status;
  std::thread slow([&] {
    TestClient c(router->port());
    slow_status.set_value(c.get("/slow?ms=3000").result_int());
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (router->in_flight("a") == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto t0 = std::chrono::steady_clock::now();
  router->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  // The in-flight client sees its connection closed, not a hang.
  auto f = slow_status.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get(), 599);
  slow.join();
  router.reset();  // destroying after stop is fine
}

TEST(RouterLifecycle, StatsCoverEveryReleaseEverInATable) {
  TestBackend a("a");
  Router router(RouterOptions{});
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 100}, {"v2", 0}}, {a.route("a", "v1")}});
  TestClient c(router.port());
  ASSERT_EQ(c.get("/").result_int(), 200);
  router.set_table({{{"v3", 100}}, {a.route("a3", "v3")}});
  ASSERT_EQ(c.get("/").result_int(), 200);
  auto stats = router.stats();
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[0].release, "v1");
  EXPECT_EQ(stats[0].requests, 1u);
  EXPECT_EQ(stats[1].release, "v2");
  EXPECT_EQ(stats[1].requests, 0u);
  EXPECT_EQ(stats[2].release, "v3");
  EXPECT_EQ(stats[2].requests, 1u);
}

TEST(RouterLifecycle, RetainStatsDropsTheCountersOfOtherReleases) {
  TestBackend a("a");
  Router router(RouterOptions{});
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  TestClient c(router.port());
  ASSERT_EQ(c.get("/").result_int(), 200);
  router.set_table({{{"v2", 100}}, {a.route("a2", "v2")}});
  ASSERT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(router.retain_stats({"v2"}), 1u);
  auto stats = router.stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].release, "v2");
  EXPECT_EQ(stats[0].requests, 1u);
  // Counting goes on for the release kept; a dropped one named again starts from zero.
  ASSERT_EQ(c.get("/").result_int(), 200);
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  ASSERT_EQ(c.get("/").result_int(), 200);
  for (const auto& st : router.stats()) EXPECT_EQ(st.requests, st.release == "v1" ? 1u : 2u);
}

// Many routers on one pool of io threads (as in the agent): stopping one, with a request
// in flight, a kept-alive client and a websocket tunnel open, closes its connections and
// leaves the pool's threads serving the others.
TEST(RouterLifecycle, RoutersShareAPoolAndOneStopsWithoutTheOthers) {
  TestBackend a("a");
  auto pool = std::make_shared<RouterIoPool>(2);
  RouterOptions o;
  o.io_pool = pool;
  std::vector<std::unique_ptr<Router>> routers;
  for (int i = 0; i < 5; ++i) {
    routers.push_back(std::make_unique<Router>(o));
    ASSERT_TRUE(routers.back()->start().ok());
    routers.back()->set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  }
  for (auto& r : routers) {
    TestClient c(r->port());
    EXPECT_EQ(c.get("/").result_int(), 200);
  }
  Router& victim = *routers[2];
  TestClient idle(victim.port());
  ASSERT_EQ(idle.get("/").result_int(), 200);
  asio::io_context ws_ioc;
  testing_router::beast::websocket::stream<tcp::socket> ws(ws_ioc);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), victim.port()));
  ws.handshake("127.0.0.1", "/ws");
  ws.write(asio::buffer(std::string("hello")));
  testing_router::beast::flat_buffer got;
  ws.read(got);
  ASSERT_EQ(testing_router::beast::buffers_to_string(got.data()), "hello");
  std::promise<int> slow_status;
  std::thread slow([&] {
    TestClient c(victim.port());
    slow_status.set_value(c.get("/slow?ms=3000").result_int());
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (victim.in_flight("a") == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GT(victim.in_flight("a"), 0);
  victim.stop();
  EXPECT_EQ(victim.connections(), 0);
  auto f = slow_status.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get(), 599);  // its connection was closed, not left hanging
  slow.join();
  testing_router::beast::error_code ec;
  ws.read(got, ec);
  EXPECT_TRUE(ec);  // the tunnel was closed too
  routers[2].reset();
  // The others serve on, on the same threads, new connections and kept-alive ones.
  for (auto& r : routers) {
    if (!r) continue;
    TestClient c(r->port());
    EXPECT_EQ(c.get("/").result_int(), 200);
    EXPECT_EQ(c.get("/").result_int(), 200);
  }
  for (auto& r : routers)
    if (r) r->stop();
}

TEST(RouterLifecycle, ConnectionsOverTheLimitAreClosed) {
  TestBackend a("a");
  RouterOptions o;
  o.max_connections = 2;
  Router router(o);
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  TestClient c1(router.port()), c2(router.port());
  ASSERT_EQ(c1.get("/").result_int(), 200);
  ASSERT_EQ(c2.get("/").result_int(), 200);
  TestClient c3(router.port());
  EXPECT_EQ(c3.get("/").result_int(), 599);  // closed without an answer
  c1.close();
  // Once a connection went, a new one is served again (the close takes a moment).
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    TestClient c4(router.port());
    status = c4.get("/").result_int();
  }
  EXPECT_EQ(status, 200);
}

TEST(RouterLifecycle, BadListenAddressIsAnError) {
  RouterOptions o;
  o.host = "not-an-address";
  Router router(o);
  Status st = router.start();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not-an-address"), std::string::npos);
}

TEST(RouterLifecycle, BackendsGivenByHostNameAreResolved) {
  TestBackend a("a");
  Router router(RouterOptions{});
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 100}}, {{"a", "v1", "localhost", a.port()}}});
  TestClient c(router.port());
  EXPECT_EQ(c.get("/").result_int(), 200);  // IPv4 preferred for a name
}

}  // namespace
}  // namespace ferry
