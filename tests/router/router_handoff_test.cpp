// Hot restart, the router's part: serving on a handed-over listening socket (and refusing
// one bound elsewhere), pausing the accept loop without refusing connections, draining
// keep-alive clients with "Connection: close", and carrying counters over.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::TestBackend;
using testing_router::TestClient;

// A listening TCP socket on 127.0.0.1:`port` (0: any), as the previous process had it.
int handoff_listener(uint16_t port, bool listening = true) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (listening) {
    EXPECT_EQ(listen(fd, 128), 0);
  }
  return fd;
}

uint16_t handoff_port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A client connection completed by the kernel (in the backlog) before anyone accepts it.
int handoff_connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends one GET on a raw connection and returns the whole answer (the router closes it).
std::string handoff_get_close(int fd) {
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(RouterHandoff, ServesConnectionsQueuedOnTheHandedOverSocketBeforeItStarted) {
  TestBackend a("a");
  const int fd = handoff_listener(0);
  const uint16_t port = handoff_port_of(fd);
  // Clients that connect while no process accepts: they wait in the backlog.
  const int early = handoff_connect(port);
  ASSERT_GE(early, 0);
  RouterOptions o;
  o.port = port;
  o.listen_fd = fd;
  Router router(o);
  ASSERT_TRUE(router.start().ok());
  EXPECT_TRUE(router.adopted_listener());
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  const std::string answer = handoff_get_close(early);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  // The adopted socket keeps the options a fresh one gets.
  int v = 0;
  socklen_t len = sizeof v;
  const int dup = router.duplicate_listener();
  ASSERT_GE(dup, 0);
  getsockopt(dup, SOL_SOCKET, SO_REUSEADDR, &v, &len);
  EXPECT_EQ(v, 1);
  EXPECT_TRUE(fcntl(dup, F_GETFD) & FD_CLOEXEC);
  close(dup);
}

// The agent's successor starts a router on the handed-over socket and then gives it the
// table: a client whose request already waits in the backlog must not be answered from
// the empty initial table ("503 no ready backend"); the router accepts only once it has one.
TEST(RouterHandoff, QueuedRequestWaitsForTheFirstTableInsteadOfGetting503) {
  TestBackend a("a");
  const int fd = handoff_listener(0);
  const uint16_t port = handoff_port_of(fd);
  const int early = handoff_connect(port);
  ASSERT_GE(early, 0);
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(early, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  RouterOptions o;
  o.port = port;
  o.listen_fd = fd;
  Router router(o);
  ASSERT_TRUE(router.start().ok());
  // Give a router that accepts at once (the bug) the chance to answer from no table.
  for (int i = 0; i < 100 && router.connections() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(router.connections(), 0) << "accepted before it had a table";
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = read(early, buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(n));
  close(early);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  // New clients after that are served as usual.
  TestClient c(port);
  EXPECT_EQ(c.get("/").result_int(), 200u);
}

TEST(RouterHandoff, SocketBoundElsewhereOrNotListeningIsClosedAndAFreshOneBound) {
  TestBackend a("a");
  for (bool listening : {true, false}) {
    const int other = handoff_listener(0, listening);  // another port: not ours to serve
    const uint16_t other_port = handoff_port_of(other);
    const uint16_t want = testing_router::dead_port();
    RouterOptions o;
    o.port = want;
    o.listen_fd = other;
    Router router(o);
    ASSERT_TRUE(router.start().ok());
    EXPECT_FALSE(router.adopted_listener());
    EXPECT_EQ(router.port(), want);
    const int probe = handoff_connect(other_port);
    EXPECT_LT(probe, 0) << "the refused socket was not closed";
    if (probe >= 0) close(probe);
    router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
    TestClient c(want);
    EXPECT_EQ(c.get("/").result_int(), 200);
  }
}

TEST(RouterHandoff, FreshBindWorksRightAfterTheHolderClosedWithConnectionsOpen) {
  // After kill -9 the kernel closes the old listener; accepted connections linger in
  // TIME_WAIT. The next process binds the same port at once (SO_REUSEADDR, no REUSEPORT).
  TestBackend a("a");
  uint16_t port = 0;
  {
    Router first(RouterOptions{});
    ASSERT_TRUE(first.start().ok());
    port = first.port();
    first.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
    TestClient c(port);
    ASSERT_EQ(c.get("/").result_int(), 200);
  }
  RouterOptions o;
  o.port = port;
  Router second(o);
  ASSERT_TRUE(second.start().ok());
}

TEST(RouterHandoff, PausedRouterRefusesNoConnectionAndServesThemOnResume) {
  TestBackend a("a");
  Router router(RouterOptions{});
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  router.pause_accepting();
  const int waiting = handoff_connect(router.port());
  ASSERT_GE(waiting, 0) << "a paused router refused a connection";
  router.resume_accepting();
  const std::string answer = handoff_get_close(waiting);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
}

TEST(RouterHandoff, DrainingClosesKeepAliveConnectionsAfterTheirNextResponse) {
  TestBackend a("a");
  Router router(RouterOptions{});
  ASSERT_TRUE(router.start().ok());
  router.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  TestClient c(router.port());
  auto before = c.get("/");
  ASSERT_EQ(before.result_int(), 200);
  EXPECT_TRUE(before.keep_alive());
  EXPECT_EQ(router.connections(), 1);
  router.drain();
  auto during = c.get("/");  // on the same, kept-alive connection
  ASSERT_EQ(during.result_int(), 200);
  EXPECT_FALSE(during.keep_alive());
  EXPECT_EQ(during[testing_router::http::field::connection], "close");
  for (int i = 0; i < 200 && router.connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(router.connections(), 0);
}

TEST(RouterHandoff, SeededCountersAddToTheNewRoutersOwn) {
  TestBackend a("a");
  Router first(RouterOptions{});
  ASSERT_TRUE(first.start().ok());
  first.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  TestClient c1(first.port());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c1.get("/").result_int(), 200);
  const auto carried = first.stats();
  Router second(RouterOptions{});
  ASSERT_TRUE(second.start().ok());
  second.seed_stats(carried);
  second.set_table({{{"v1", 100}}, {a.route("a", "v1")}});
  TestClient c2(second.port());
  for (int i = 0; i < 2; ++i) ASSERT_EQ(c2.get("/").result_int(), 200);
  auto stats = second.stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].requests, 5u);
  EXPECT_EQ(stats[0].status_2xx, 5u);
  EXPECT_EQ(stats[0].sample_seq, 5u);
  EXPECT_EQ(stats[0].recent_latencies_ms.size(), 5u);
  uint64_t in_buckets = 0;
  for (auto n : stats[0].latency_counts) in_buckets += n;
  EXPECT_EQ(in_buckets, 5u);
}

}  // namespace
}  // namespace ferry
