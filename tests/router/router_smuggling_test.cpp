// Request smuggling: a Connection header naming a field the router frames, routes or
// forwards by is refused (400 for requests, 502 for responses), Content-Length lists are
// normalised, and under pooled keep-alive reuse every client request reaches the backend
// exactly once and every client gets its own answer.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "router/raw_backend.h"
#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::RawBackend;
using testing_router::TestClient;
namespace asio = testing_router::asio;
using tcp = testing_router::tcp;

class RouterSmuggling : public ::testing::Test {
 protected:
  void SetUp() override {
    router_ = std::make_unique<Router>(RouterOptions{});
    ASSERT_TRUE(router_->start().ok());
    router_->set_table({{{"v1", 100}}, {backend_.route("a", "v1")}});
  }
  // Sends `request` on a new connection and reads until the router closes it or `limit`
  // bytes arrived.
  std::string raw(const std::string& request) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), router_->port()));
    boost::system::error_code ec;
    asio::write(s, asio::buffer(request), ec);
    s.shutdown(tcp::socket::shutdown_send, ec);
    std::string got;
    char buf[4096];
    for (;;) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
    return got;
  }
  RawBackend backend_;
  std::unique_ptr<Router> router_;
};

const char* kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

TEST_F(RouterSmuggling, ConnectionNamingContentLengthIsRefusedAndNothingReachesTheBackend) {
  std::string body = kSmuggled;
  std::string got =
      raw("POST /outer HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
  EXPECT_NE(got.find("content-length"), std::string::npos) << got;
  EXPECT_EQ(backend_.count(), 0u);
}

TEST_F(RouterSmuggling, EveryManagedFieldInAConnectionListIsRefused) {
  for (std::string token :
       {"transfer-encoding", "Content-Length", "host", "HOST ", "x-forwarded-for",
        "X-Forwarded-Proto", "forwarded", "x-request-id", "x-ferry-release", "x-ferry-idempotent",
        "keep-alive, content-length", "close,\ttransfer-encoding", "cookie"}) {
    std::string got =
        raw("GET /t HTTP/1.1\r\nHost: x\r\nConnection: " + token + "\r\nX-Request-Id: r1\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << token << ": " << got;
  }
  // A chunked body whose framing field is listed never reaches the backend as raw chunks.
  std::string got =
      raw("POST /c HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\n"
          "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
  EXPECT_EQ(backend_.count(), 0u);
}

TEST_F(RouterSmuggling, OrdinaryConnectionTokensStillWork) {
  // Fields that are not the router's may be listed: they are dropped, the request served.
  std::string got =
      raw("GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close, x-private\r\n"
          "X-Private: secret\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  ASSERT_EQ(backend_.count(), 1u);
  EXPECT_EQ(backend_.log()[0].head.find("X-Private"), std::string::npos);
}

TEST_F(RouterSmuggling, TwoHostFieldsAreRefused) {
  std::string got = raw("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
  EXPECT_EQ(backend_.count(), 0u);
}

TEST_F(RouterSmuggling, ContentLengthListIsNormalisedToOneValue) {
  std::string got =
      raw("POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n"
          "Connection: close\r\n\r\nhello");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  ASSERT_EQ(backend_.count(), 1u);
  auto l = backend_.log()[0];
  EXPECT_EQ(l.body, "hello");
  EXPECT_NE(l.head.find("Content-Length: 5\n"), std::string::npos) << l.head;
  EXPECT_EQ(l.head.find("5, 5"), std::string::npos) << l.head;
  size_t first = l.head.find("Content-Length");
  EXPECT_EQ(l.head.find("Content-Length", first + 1), std::string::npos) << l.head;
  // Different values stay a malformed request.
  got = raw("POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!");
  EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
  EXPECT_EQ(backend_.count(), 1u);
}

TEST_F(RouterSmuggling, ResponseWhoseConnectionNamesContentLengthIs502) {
  std::string got = raw("GET /bad-connection HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 502 ", 0), 0u) << got;
  EXPECT_EQ(got.find("hello"), std::string::npos) << got;
}

// The measured attack: smuggling attempts mixed with ordinary keep-alive traffic over the
// router's pooled upstream connections. Every ordinary request reaches the backend once
// and its client gets the answer to its own request, never another's.
TEST_F(RouterSmuggling, OneRequestInOneOutUnderPooledKeepAliveReuse) {
  constexpr int kThreads = 4, kRequests = 150;
  std::atomic<int> wrong{0}, failed{0}, sent{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      TestClient c(router_->port());
      for (int i = 0; i < kRequests; ++i) {
        if (i % 5 == 0) {
          std::string body = kSmuggled;
          std::string got =
              raw("POST /attack HTTP/1.1\r\nHost: x\r\nConnection: " +
                  std::string(i % 10 == 0 ? "content-length" : "host") +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
          if (got.rfind("HTTP/1.1 400 ", 0) != 0) ++wrong;
          continue;
        }
        std::string target = "/u" + std::to_string(t) + "-" + std::to_string(i);
        auto r = c.get(target);
        ++sent;
        if (r.result_int() != 200)
          ++failed;
        else if (r.body() != target)
          ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  auto log = backend_.log();
  EXPECT_EQ(log.size(), static_cast<size_t>(sent.load()));
  for (const auto& l : log) {
    EXPECT_EQ(l.target.rfind("/u", 0), 0u) << l.target;
    // Every request the backend saw went through the router's forwarding.
    EXPECT_NE(l.head.find("X-Forwarded-For"), std::string::npos);
    EXPECT_NE(l.head.find("X-Request-Id"), std::string::npos);
  }
  // Pooled reuse happened: far fewer upstream connections than requests.
  EXPECT_LT(backend_.connections(), sent.load() / 2);
}

}  // namespace
}  // namespace ferry
