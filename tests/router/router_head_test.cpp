// Message heads that do not arrive in one read: Beast's parser takes the request (or
// status) line and each complete field as soon as they are there, so the router must go on
// from where the parser stopped rather than hand it the same bytes again (which read the
// request line as a field: 400 "malformed request" for any head split after its first
// line, such as one with a field larger than the router's first 16 KiB read). A head over
// the header limit gets 431, whatever field makes it so.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "router/raw_backend.h"
#include "router/router.h"

namespace ferry {
namespace {

using testing_router::RawBackend;
namespace head_asio = boost::asio;
using head_tcp = boost::asio::ip::tcp;

class RouterHeads : public ::testing::Test {
 protected:
  void start(size_t max_header_bytes = 64 * 1024) {
    RouterOptions o;
    o.max_header_bytes = max_header_bytes;
    router_ = std::make_unique<Router>(o);
    ASSERT_TRUE(router_->start().ok());
    router_->set_table({{{"v1", 100}}, {backend_.route("a", "v1")}});
  }
  // Writes `parts` on a new connection, `pause_ms` apart, then reads until the router
  // closes it (the requests ask for that).
  std::string send_parts(const std::vector<std::string>& parts, int pause_ms = 0) {
    head_asio::io_context ioc;
    head_tcp::socket s(ioc);
    s.connect(head_tcp::endpoint(head_asio::ip::make_address("127.0.0.1"), router_->port()));
    boost::system::error_code ec;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      head_asio::write(s, head_asio::buffer(parts[i]), ec);
    }
    std::string got;
    char buf[4096];
    for (;;) {
      size_t n = s.read_some(head_asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
    return got;
  }
  RawBackend backend_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterHeads, ARequestHeadSplitAfterAFieldIsServedWhole) {
  start();
  std::string got = send_parts(
      {"GET /split HTTP/1.1\r\nHost: x\r\nX-A: 1", "\r\nConnection: close\r\nX-B: 2\r\n\r\n"}, 200);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  auto log = backend_.log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].target, "/split");
  EXPECT_NE(log[0].head.find("X-A: 1\n"), std::string::npos) << log[0].head;
  EXPECT_NE(log[0].head.find("X-B: 2\n"), std::string::npos) << log[0].head;
  // The request line went to the backend once, as the request line.
  EXPECT_EQ(log[0].head.find("GET"), std::string::npos) << log[0].head;
}

TEST_F(RouterHeads, AFieldLargerThanTheFirstReadReachesTheBackendWhole) {
  start();
  // 20 KiB: the router's first read takes at most 16 KiB, so this head always arrives in
  // two reads, the first ending inside the field.
  const std::string big(20 * 1024, 'b');
  std::string got = send_parts(
      {"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\nConnection: close\r\n\r\n"});
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got.substr(0, 200);
  auto log = backend_.log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].head.find("X-Big: " + big + "\n"), std::string::npos);
}

TEST_F(RouterHeads, ASingleFieldOverTheHeaderLimitGets431SayingSo) {
  start(32 * 1024);
  std::string got =
      send_parts({"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(40 * 1024, 'b') +
                  "\r\nConnection: close\r\n\r\n"});
  EXPECT_EQ(got.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u)
      << got.substr(0, 200);
  EXPECT_NE(got.find("\r\n\r\nrequest header fields too large\n"), std::string::npos) << got;
  EXPECT_EQ(backend_.count(), 0u);
  // Under the limit, the same field passes.
  got = send_parts({"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(24 * 1024, 'b') +
                    "\r\nConnection: close\r\n\r\n"});
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got.substr(0, 200);
}

TEST_F(RouterHeads, AnUpstreamHeadInTwoWritesIsRelayedWhole) {
  start();
  std::string got =
      send_parts({"GET /split-head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"});
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  EXPECT_NE(got.find("\r\nX-Part: one\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\nX-Other: two\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 5), "whole") << got;
}

}  // namespace
}  // namespace ferry
