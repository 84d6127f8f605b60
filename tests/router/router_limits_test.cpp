// Limits, forwarding headers, timeouts and per-release counters.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <numeric>

#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::TestBackend;
using testing_router::TestClient;
namespace asio = testing_router::asio;
namespace http = testing_router::http;
using tcp = testing_router::tcp;

class RouterLimits : public ::testing::Test {
 protected:
  void start(RouterOptions o = {}) {
    router_ = std::make_unique<Router>(o);
    ASSERT_TRUE(router_->start().ok());
    router_->set_table({{{"v1", 100}}, {backend_.route("a", "v1")}});
  }
  std::string raw(const std::string& request) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), router_->port()));
    boost::system::error_code ec;
    asio::write(s, asio::buffer(request), ec);
    std::string got;
    char buf[4096];
    for (;;) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
    return got;
  }
  TestBackend backend_{"v1a"};
  std::unique_ptr<Router> router_;
};

TEST_F(RouterLimits, OversizedHeaderIs431) {
  RouterOptions o;
  o.max_header_bytes = 4096;
  start(o);
  TestClient c(router_->port());
  EXPECT_EQ(c.get("/", {{"x-big", std::string(8000, 'a')}}).result_int(), 431);
  TestClient c2(router_->port());
  EXPECT_EQ(c2.get("/", {{"x-small", std::string(1000, 'a')}}).result_int(), 200);
}

TEST_F(RouterLimits, OversizedBodyIs413) {
  RouterOptions o;
  o.max_body_bytes = 1000;
  start(o);
  // Declared too large: refused before any byte of it is read.
  std::string got = raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
  // Chunked, found too large while streaming.
  std::string chunk = "7d0\r\n" + std::string(2000, 'x') + "\r\n";
  got = raw("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk);
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
  TestClient c(router_->port());
  EXPECT_EQ(c.request(http::verb::post, "/echo", {}, std::string(900, 'y')).result_int(), 200);
}

TEST_F(RouterLimits, MalformedRequestsAre400) {
  start();
  EXPECT_EQ(raw("GARBAGE\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // Conflicting framing is refused rather than passed on (request smuggling).
  EXPECT_EQ(
      raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
          .rfind("HTTP/1.1 400", 0),
      0u);
  EXPECT_EQ(
      raw("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").rfind("HTTP/1.1 400", 0),
      0u);
  EXPECT_EQ(backend_.requests(), 0);
}

TEST_F(RouterLimits, SlowUpstreamIs504) {
  RouterOptions o;
  o.response_timeout_ms = 200;
  start(o);
  TestClient c(router_->port());
  auto r = c.get("/slow?ms=1500");
  EXPECT_EQ(r.result_int(), 504);
  EXPECT_EQ(r["x-ferry-release"], "v1");
  EXPECT_EQ(c.get("/").result_int(), 200);
  auto stats = router_->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].status_5xx, 1u);
  EXPECT_EQ(stats[0].upstream_errors, 0u);
}

TEST_F(RouterLimits, IdleClientConnectionsAreClosed) {
  RouterOptions o;
  o.idle_timeout_ms = 150;
  start(o);
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), router_->port()));
  char b;
  boost::system::error_code ec;
  auto t0 = std::chrono::steady_clock::now();
  s.read_some(asio::buffer(&b, 1), ec);  // returns when the router closes
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(RouterLimits, ForwardedForIsAppendedAndRequestIdPassedOn) {
  start();
  RouteTable t{{{"v1", 100}}, {backend_.route("a", "v1")}};
  t.policy.trusted_proxies = {"127.0.0.1"};  // a trusted proxy's list is kept
  router_->set_table(t);
  TestClient c(router_->port());
  auto r = c.get("/", {{"x-forwarded-for", "203.0.113.7"}});
  EXPECT_EQ(r["x-seen-xff"], "203.0.113.7, 127.0.0.1");
  std::string made = std::string(r["x-seen-request-id"]);
  EXPECT_FALSE(made.empty());
  EXPECT_EQ(r["x-request-id"], made);  // the client learns the id too
  auto r2 = c.get("/");
  EXPECT_EQ(r2["x-seen-xff"], "127.0.0.1");
  EXPECT_NE(std::string(r2["x-seen-request-id"]), made);
  auto given = c.get("/", {{"x-request-id", "req-42"}});
  EXPECT_EQ(given["x-seen-request-id"], "req-42");
  // An empty or oversized id is replaced.
  for (std::string bad : {std::string(), std::string(300, 'i')}) {
    auto replaced = c.get("/", {{"x-request-id", bad}});
    EXPECT_FALSE(std::string(replaced["x-seen-request-id"]).empty());
    EXPECT_LT(replaced["x-seen-request-id"].size(), 100u);
  }
  // Fields a Connection header names are hop-by-hop too.
  auto listed =
      c.get("/headers", {{"connection", "keep-alive, X-Hop"}, {"x-hop", "1"}, {"x-end", "2"}});
  EXPECT_EQ(listed.body().find("x-hop"), std::string::npos) << listed.body();
  EXPECT_NE(listed.body().find("x-end: 2"), std::string::npos) << listed.body();
  EXPECT_NE(listed.body().find("X-Forwarded-For: 127.0.0.1"), std::string::npos) << listed.body();
  // Hop-by-hop fields stay on their side: the upstream connection is the router's.
  auto closing = c.get("/", {{"connection", "close"}});
  EXPECT_EQ(closing["x-seen-connection"], "");
  EXPECT_FALSE(closing.keep_alive());
}

TEST_F(RouterLimits, CountsStatusClassesAndLatencies) {
  start();
  TestClient c(router_->port());
  for (int i = 0; i < 5; ++i) c.get("/status/200");
  for (int i = 0; i < 3; ++i) c.get("/status/404");
  for (int i = 0; i < 2; ++i) c.request(http::verb::post, "/status/500", {}, "x");
  c.get("/status/302");
  c.get("/slow?ms=30");
  auto stats = router_->stats();
  ASSERT_EQ(stats.size(), 1u);
  const ReleaseStats& s = stats[0];
  EXPECT_EQ(s.release, "v1");
  EXPECT_EQ(s.requests, 12u);
  EXPECT_EQ(s.status_2xx, 6u);
  EXPECT_EQ(s.status_3xx, 1u);
  EXPECT_EQ(s.status_4xx, 3u);
  EXPECT_EQ(s.status_5xx, 2u);
  EXPECT_EQ(s.upstream_errors, 0u);
  ASSERT_EQ(s.latency_counts.size(), latency_buckets_ms().size() + 1);
  EXPECT_EQ(std::accumulate(s.latency_counts.begin(), s.latency_counts.end(), uint64_t{0}), 12u);
  EXPECT_EQ(s.sample_seq, 12u);
  ASSERT_EQ(s.recent_latencies_ms.size(), 12u);
  EXPECT_GE(s.recent_latencies_ms.back(), 30.0);  // newest last: the slow one
  EXPECT_GE(s.latency_sum_ms, 30.0);
  // The 30 ms request is in a bucket whose bound is at least 30.
  size_t slow_bucket = 0;
  for (size_t i = 0; i < latency_buckets_ms().size(); ++i)
    if (latency_buckets_ms()[i] >= 30) {
      slow_bucket = i;
      break;
    }
  uint64_t at_or_above = 0;
  for (size_t i = slow_bucket; i < s.latency_counts.size(); ++i) at_or_above += s.latency_counts[i];
  EXPECT_GE(at_or_above, 1u);
  EXPECT_EQ(s.active_requests, 0);
}

TEST_F(RouterLimits, StartFailsOnABusyPortAndNamesIt) {
  start();
  RouterOptions o;
  o.port = router_->port();
  Router second(o);
  Status st = second.start();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(std::to_string(o.port)), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// A client dripping its body a byte at a time (each read well inside the idle timeout)
// is cut off by the total body deadline with 408, and the backend connection freed.
TEST_F(RouterLimits, SlowDripBodyHitsTheTotalBodyDeadline) {
  start();
  RouteTable t{{{"v1", 100}}, {backend_.route("a", "v1")}};
  t.policy.request_body_timeout_ms = 300;
  router_->set_table(t);
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), router_->port()));
  boost::system::error_code ec;
  asio::write(s,
              asio::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 100\r\n\r\n")),
              ec);
  std::atomic<bool> answered{false};
  std::atomic<int> dripped{0};
  std::thread drip([&] {
    for (int i = 0; i < 100 && !answered; ++i) {
      boost::system::error_code wec;
      asio::write(s, asio::buffer("x", 1), wec);
      if (wec) return;
      ++dripped;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::string got;
  char buf[1024];
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    got.append(buf, n);
  }
  answered = true;
  drip.join();
  EXPECT_EQ(got.rfind("HTTP/1.1 408 ", 0), 0u) << got;
  EXPECT_LT(dripped.load(), 100);  // cut off before the body was complete
  auto stats = router_->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].status_4xx, 1u);
  EXPECT_EQ(stats[0].status_2xx, 0u);
  EXPECT_EQ(router_->in_flight("a"), 0);
  // Without the total deadline the per-read idle timeout (60 s) would never fire here; a
  // body that arrives in time is still served.
  TestClient c(router_->port());
  EXPECT_EQ(c.request(testing_router::http::verb::post, "/echo", {}, "hello").body(), "hello");
}

}  // namespace
}  // namespace ferry
