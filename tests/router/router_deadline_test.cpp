// The deadlines of all sessions of an io thread share one timer (Worker::deadline_timer):
// it fires at the earliest deadline and is moved earlier only when a session needs an
// earlier one. These tests hold sessions with different deadlines on one thread and check
// each still fires, in the order of the deadlines, whichever was set first.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "router/router.h"
#include "router/test_backend.h"
#include "wait_until.h"

namespace ferry {
namespace {

using testing_router::read_to_eof;
using testing_router::TestBackend;
namespace dl_asio = boost::asio;
using dl_tcp = boost::asio::ip::tcp;

class RouterDeadlines : public ::testing::Test {
 protected:
  void start(int idle_ms, int response_ms) {
    RouterOptions o;
    o.threads = 1;  // every session on one io thread, so they share its timer
    o.idle_timeout_ms = idle_ms;
    o.response_timeout_ms = response_ms;
    router_ = std::make_unique<Router>(o);
    ASSERT_TRUE(router_->start().ok());
    router_->set_table({{{"v1", 100}}, {backend_.route("a", "v1")}});
  }
  std::unique_ptr<dl_tcp::socket> connect() {
    auto s = std::make_unique<dl_tcp::socket>(ioc_);
    s->connect(dl_tcp::endpoint(dl_asio::ip::make_address("127.0.0.1"), router_->port()));
    return s;
  }
  // Whether the router closed `s` (without waiting).
  static bool closed_now(dl_tcp::socket& s) {
    char b;
    ssize_t r = ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0;
  }
  dl_asio::io_context ioc_;
  TestBackend backend_{"v1a"};
  std::unique_ptr<Router> router_;
};

// An idle connection's late deadline is armed first; a request waiting for a slow backend
// then needs an earlier one (the timer moves earlier); a connection opened after that has
// a later deadline than the armed one (no timer change: the scan at the earlier deadline
// arms the timer for it). The 504 comes while both idle connections are still open, and
// both are closed afterwards.
TEST_F(RouterDeadlines, EarlierAndLaterDeadlinesOnOneThreadEachFire) {
  start(/*idle_ms=*/3000, /*response_ms=*/200);
  auto idle_first = connect();
  // The router has the connection (and armed its idle deadline) once it answers on it.
  dl_asio::write(*idle_first, dl_asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  char buf[512];
  ASSERT_GT(idle_first->read_some(dl_asio::buffer(buf)), 0u);

  auto slow = connect();
  dl_asio::write(*slow, dl_asio::buffer(std::string(
                            "GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  auto idle_later = connect();
  dl_asio::write(*idle_later, dl_asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  ASSERT_GT(idle_later->read_some(dl_asio::buffer(buf)), 0u);

  std::string answer = read_to_eof(*slow);
  EXPECT_EQ(answer.rfind("HTTP/1.1 504 ", 0), 0u) << answer;
  EXPECT_FALSE(closed_now(*idle_first));
  EXPECT_FALSE(closed_now(*idle_later));
  // Their idle deadlines fire too (read_to_close returns at the router's close; a deadline
  // that never fired would hang here until the test's own timeout).
  read_to_eof(*idle_first);
  read_to_eof(*idle_later);
}

// A deadline that fired leaves the timer armed for the others: after many short ones, a
// long-idle connection set up before them is still closed.
TEST_F(RouterDeadlines, ManySlowRequestsEachGet504AndAnIdleConnectionStillCloses) {
  start(/*idle_ms=*/2000, /*response_ms=*/100);
  auto idle = connect();
  dl_asio::write(*idle, dl_asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  char buf[512];
  ASSERT_GT(idle->read_some(dl_asio::buffer(buf)), 0u);
  std::vector<std::unique_ptr<dl_tcp::socket>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(connect());
    dl_asio::write(*slow.back(),
                   dl_asio::buffer(std::string("GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n"
                                               "Connection: close\r\n\r\n")));
  }
  for (auto& s : slow) {
    std::string answer = read_to_eof(*s);
    EXPECT_EQ(answer.rfind("HTTP/1.1 504 ", 0), 0u) << answer;
  }
  boost::system::error_code ec;
  idle->read_some(dl_asio::buffer(buf), ec);  // returns when the router closes it
  EXPECT_EQ(ec, dl_asio::error::eof);
}

// A connection that waited a second for its next request gives back its buffers, its
// pending read cut short (Session::trim, run by the same timer); it then waits for the
// client without a buffer. Its next request, sent in two parts, is served on the same
// connection, and its idle deadline still closes it afterwards.
TEST_F(RouterDeadlines, AnIdleConnectionTrimmedAfterASecondServesOnAndStillTimesOut) {
  start(/*idle_ms=*/2500, /*response_ms=*/1000);
  auto c = connect();
  dl_asio::write(*c, dl_asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  char buf[512];
  ASSERT_GT(c->read_some(dl_asio::buffer(buf)), 0u);
  EXPECT_EQ(router_->idle_trims(), 0u);
  ASSERT_TRUE(testing::wait_until([&] { return router_->idle_trims() >= 1; }));
  EXPECT_FALSE(closed_now(*c));
  dl_asio::write(*c, dl_asio::buffer(std::string("GET /headers HTTP/1.1\r\nHo")));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  dl_asio::write(*c, dl_asio::buffer(std::string("st: x\r\nX-After-Trim: yes\r\n\r\n")));
  std::string answer;
  while (answer.find("X-After-Trim") == std::string::npos &&
         answer.find("x-after-trim") == std::string::npos) {
    boost::system::error_code ec;
    size_t n = c->read_some(dl_asio::buffer(buf), ec);
    if (ec) break;
    answer.append(buf, n);
  }
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("yes"), std::string::npos) << answer;
  boost::system::error_code ec;
  c->read_some(dl_asio::buffer(buf), ec);  // returns when the idle deadline closes it
  EXPECT_EQ(ec, dl_asio::error::eof);
}

}  // namespace
}  // namespace ferry
