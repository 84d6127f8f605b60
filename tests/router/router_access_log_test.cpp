// The access log: one JSON line per request with the fields the docs list, written off the
// io threads, escaped against hostile paths, rotated by size, and dropping (counted) rather
// than stalling requests when the disk is slower than the traffic.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "common/json.h"
#include "router/access_log.h"
#include "router/router.h"
#include "router/test_backend.h"
#include "wait_until.h"

namespace ferry {
namespace {

using testing::wait_until;
using testing_router::TestBackend;
using testing_router::TestClient;

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

class RouterAccessLog : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-alog-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override {
    if (router_) router_->stop();
    std::filesystem::remove_all(dir_);
  }
  void start(AccessLogSpec spec, RouteTable table, size_t queue_lines = 16384) {
    RouterOptions o;
    o.access_log = std::move(spec);
    o.access_log_queue_lines = queue_lines;
    router_ = std::make_unique<Router>(o);
    Status s = router_->start();
    ASSERT_TRUE(s.ok()) << s.message();
    router_->set_table(std::move(table));
  }
  AccessLogSpec spec() const {
    AccessLogSpec s;
    s.path = path_;
    return s;
  }
  std::vector<Json> wait_for_lines(size_t n) {
    EXPECT_TRUE(wait_until([&] { return router_->access_log_written() >= n; }));
    std::vector<Json> out;
    for (const auto& l : read_lines(path_)) out.push_back(Json::parse(l));
    return out;
  }

  std::string dir_, path_;
  TestBackend v1_{"v1a"}, v1b_{"v1b"}, v2_{"v2a"};
  std::unique_ptr<Router> router_;
};

TEST_F(RouterAccessLog, OffByDefault) {
  RouterOptions o;
  Router r(o);
  ASSERT_TRUE(r.start().ok());
  r.set_table(RouteTable{{{"v1", 100}}, {v1_.route("a", "v1")}});
  TestClient c(r.port());
  ASSERT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(r.access_log_written(), 0u);
  r.stop();
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(RouterAccessLog, EveryFieldOfARequest) {
  start(spec(), RouteTable{{{"v1", 100}}, {v1_.route("a", "v1")}});
  TestClient c(router_->port());
  auto r = c.get("/hello?x=1", {{"X-Request-Id", "req-42"}});
  ASSERT_EQ(r.result_int(), 200);
  auto lines = wait_for_lines(1);
  ASSERT_EQ(lines.size(), 1u);
  const Json& j = lines[0];
  EXPECT_TRUE(std::regex_match(j.at("time").get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << j.dump();
  EXPECT_EQ(j.at("client"), "127.0.0.1");
  EXPECT_EQ(j.at("method"), "GET");
  EXPECT_EQ(j.at("path"), "/hello?x=1");
  EXPECT_EQ(j.at("status"), 200);
  // Head and body as sent: more than the body ("v1a"), less than a kilobyte here.
  EXPECT_GT(j.at("bytes").get<uint64_t>(), 3u);
  EXPECT_LT(j.at("bytes").get<uint64_t>(), 1024u);
  EXPECT_GE(j.at("duration_ms").get<double>(), 0.0);
  EXPECT_EQ(j.at("release"), "v1");
  EXPECT_EQ(j.at("instance"), "a");
  EXPECT_EQ(j.at("request_id"), "req-42");
  EXPECT_EQ(j.at("retried"), false);
  EXPECT_EQ(j.at("shielded"), false);
  EXPECT_EQ(j.at("tls"), false);
  EXPECT_EQ(j.at("http2"), false);
}

TEST_F(RouterAccessLog, RetriedAndShieldedAndRouterAnswers) {
  v1_.fail_with(503);  // instance a of v1 fails; b of v1 answers the retry
  start(spec(), RouteTable{{{"v1", 100}}, {v1_.route("a", "v1"), v1b_.route("b", "v1")}});
  TestClient c(router_->port());
  // Every request that met instance a (503) was retried on b, and only those.
  ASSERT_EQ(c.get("/one").result_int(), 200);
  ASSERT_EQ(c.get("/one").result_int(), 200);
  auto lines = wait_for_lines(2);
  ASSERT_EQ(lines.size(), 2u);
  int retried = 0;
  for (const auto& l : lines) {
    EXPECT_EQ(l.at("instance"), "b");
    if (l.at("retried") == true) ++retried;
  }
  EXPECT_GE(retried, 1);
  EXPECT_EQ(retried, v1_.requests());

  // The canary (v2) fails; the shield answers from the stable release.
  v1_.fail_with(0);
  v2_.fail_with(500);
  RouteTable t{{{"v1", 50}, {"v2", 50}}, {v1_.route("a", "v1"), v2_.route("c", "v2")}};
  t.stable = "v1";
  router_->set_table(t);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(c.get("/two").result_int(), 200);
  lines = wait_for_lines(6);
  ASSERT_EQ(lines.size(), 6u);
  int shielded = 0;
  for (size_t i = 2; i < lines.size(); ++i)
    if (lines[i].at("shielded") == true) {
      ++shielded;
      EXPECT_EQ(lines[i].at("release"), "v1");  // who answered in the end
    }
  EXPECT_EQ(shielded, 2);

  // An answer the router makes itself (no ready backend) is logged too.
  router_->set_table(RouteTable{{{"v1", 0}}, {}});
  auto r = c.get("/three");
  ASSERT_EQ(r.result_int(), 503);
  lines = wait_for_lines(7);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[6].at("status"), 503);
  EXPECT_EQ(lines[6].at("path"), "/three");
  EXPECT_EQ(lines[6].at("release"), "");
}

TEST_F(RouterAccessLog, HostilePathsCannotBreakTheLine) {
  start(spec(), RouteTable{{{"v1", 100}}, {v1_.route("a", "v1")}});
  // Bytes a client can put in a target: quotes, backslashes, braces, bytes that are not
  // UTF-8. Each must come back from the JSON exactly, or as U+FFFD for the invalid bytes.
  std::string target = "/a\"b\\c}{\"status\":1}";
  std::string raw = "GET " + target + "%0a\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(router_->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(send(fd, raw.data(), raw.size(), 0), static_cast<ssize_t>(raw.size()));
  char buf[512];
  ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  auto lines = read_lines(path_);
  ASSERT_TRUE(wait_until([&] {
    lines = read_lines(path_);
    return !lines.empty();
  }));
  ASSERT_EQ(lines.size(), 1u);
  Json j = Json::parse(lines[0]);
  EXPECT_EQ(j.at("path"), target + "%0a\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(j.at("status"), 200);
  EXPECT_EQ(j.size(), 14u);  // no field injected
}

TEST(AccessLogLine, ControlCharactersAreEscaped) {
  routing::AccessRecord r;
  std::string path = "/x\r\n{\"a\":1}\x01\x7f\t";
  r.path = path;
  r.method = "GET";
  std::string line = routing::access_log_line(r);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, whatever the path holds
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line.find('\x01'), std::string::npos);
  EXPECT_EQ(Json::parse(line).at("path"), path);
}

TEST_F(RouterAccessLog, RotatesBySize) {
  AccessLogSpec s = spec();
  s.max_bytes = 4096;
  s.keep = 2;
  start(s, RouteTable{{{"v1", 100}}, {v1_.route("a", "v1")}});
  TestClient c(router_->port());
  for (int i = 0; i < 120; ++i) ASSERT_EQ(c.get("/rotate-me").result_int(), 200);
  ASSERT_TRUE(wait_until([&] { return router_->access_log_written() >= 120; }));
  router_->stop();
  EXPECT_TRUE(std::filesystem::exists(path_ + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path_ + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path_ + ".3"));  // keep: 2
  // A file is rotated once it reached the limit, not long after (a batch of lines past it).
  for (auto p : {path_ + ".1", path_ + ".2"}) {
    EXPECT_GE(std::filesystem::file_size(p), 4096u) << p;
    EXPECT_LT(std::filesystem::file_size(p), 4096u + 16384u) << p;
    for (const auto& l : read_lines(p)) EXPECT_TRUE(Json::accept(l)) << l;
  }
}

TEST_F(RouterAccessLog, AFullQueueDropsLinesInsteadOfStallingRequests) {
  // A FIFO nobody reads stands for a disk that stopped: the writer blocks on it.
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  int reader = open(path_.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  fcntl(reader, F_SETPIPE_SZ, 4096);
  start(spec(), RouteTable{{{"v1", 100}}, {v1_.route("a", "v1")}}, 8);
  TestClient c(router_->port());
  constexpr int kRequests = 400;
  for (int i = 0; i < kRequests; ++i) ASSERT_EQ(c.get("/busy").result_int(), 200);
  EXPECT_GT(router_->access_log_dropped(), 0u);
  // Drain the FIFO so the writer can finish, then every line is either written or dropped.
  std::atomic<bool> done{false};
  std::thread drain([&] {
    char buf[4096];
    while (!done) {
      if (read(reader, buf, sizeof buf) <= 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  ASSERT_TRUE(wait_until(
      [&] { return router_->access_log_written() + router_->access_log_dropped() >= kRequests; }));
  EXPECT_EQ(router_->access_log_written() + router_->access_log_dropped(),
            static_cast<uint64_t>(kRequests));
  router_->stop();
  done = true;
  drain.join();
  close(reader);
}

}  // namespace
}  // namespace ferry
