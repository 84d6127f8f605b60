// Hot restart of the agent (agent/handoff.h) with real instances (ferry-demo-app) on
// loopback: a successor takes the routers' sockets under steady load with no failed
// request; a successor that goes away leaves the running agent serving; a peer that is
// not a successor changes nothing.
#include "agent/handoff.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "common/http_client.h"
#include "free_port.h"
#include "test_paths.h"

namespace ferry {
namespace {

const std::string kHandoffDemo = testing::demo_app_binary();

// Clients that each send GET / on a new connection in a loop and count what failed.
struct HandoffLoad {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;

  void start(uint16_t port, int n) {
    for (int t = 0; t < n; ++t)
      threads.emplace_back([this, port] {
        HttpClient c(Endpoint{"127.0.0.1", port}, HttpClientOptions{5000, 1 << 20});
        for (int i = 0; i < 20000 && !stop; ++i) {
          auto r = c.request("GET", "/");
          if (r.ok() && r->status == 200) {
            ++ok;
          } else {
            ++failed;
            std::lock_guard lk(mu);
            if (first_error.empty())
              first_error = r.ok() ? "status " + std::to_string(r->status) : r.status().message();
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      });
  }
  void finish() {
    stop = true;
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

class HandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-handoff-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (auto it = agents_.rbegin(); it != agents_.rend(); ++it) (*it)->stop(true);
    agents_.clear();
    std::filesystem::remove_all(dir_);
  }
  AgentOptions options() {
    AgentOptions o;
    const auto first = static_cast<uint16_t>(11000 + (getpid() % 90) * 100);
    o.instance_ports = PortRange{first, static_cast<uint16_t>(first + 99)};
    o.data_dir = dir_.string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    o.drain_ms = 3000;
    o.handoff_timeout_ms = 3000;
    return o;
  }
  Agent& add(AgentOptions o) {
    agents_.push_back(std::make_unique<Agent>(o));
    return *agents_.back();
  }
  // An app with two ready demo instances behind a router on a free port.
  AppDesiredState serve_web(Agent& a) {
    AppDesiredState d;
    d.app = "web";
    d.generation = 1;
    d.listen_port = testing::free_loopback_port();
    d.weights = {{"v1", 100}};
    for (const char* id : {"web-v1-0", "web-v1-1"}) {
      InstanceSpec s;
      s.id = id;
      s.release = "v1";
      s.run.command = {kHandoffDemo, "--port", "${PORT}", "--version", "${VERSION}"};
      s.run.stop_grace_ms = 2000;
      s.checks.readiness.kind = ProbeSpec::Kind::kHttp;
      s.checks.readiness.path = "/healthz";
      s.checks.readiness.interval_ms = 50;
      d.instances.push_back(s);
    }
    EXPECT_TRUE(a.put_app(d).ok());
    EXPECT_TRUE(wait_ready(a, 2));
    return d;
  }
  static bool wait_ready(Agent& a, size_t n) {
    for (int i = 0; i < 500; ++i) {
      auto s = a.app_status("web");
      size_t ready = 0;
      if (s.ok())
        for (const auto& inst : s->instances) ready += inst.state == InstanceState::kReady;
      if (ready >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  static std::set<int> pids(Agent& a) {
    std::set<int> out;
    auto s = a.app_status("web");
    if (s.ok())
      for (const auto& i : s->instances) out.insert(i.pid);
    return out;
  }
  static int get_status(uint16_t port) {
    HttpClient c(Endpoint{"127.0.0.1", port}, HttpClientOptions{3000, 1 << 20});
    auto r = c.request("GET", "/");
    return r.ok() ? r->status : -1;
  }
  int raw_connect() {
    const std::string path = (dir_ / "handoff.sock").string();
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_F(HandoffTest, SuccessorTakesTheRoutersSocketUnderLoadWithNoFailedRequest) {
  std::atomic<bool> handed{false};
  AgentOptions o1 = options();
  o1.on_handed_over = [&] { handed = true; };
  Agent& first = add(o1);
  ASSERT_TRUE(first.start().ok());
  const AppDesiredState d = serve_web(first);
  const std::set<int> before = pids(first);
  HandoffLoad load;
  load.start(d.listen_port, 4);
  while (load.ok < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  AgentOptions o2 = options();
  o2.takeover = true;
  Agent& second = add(o2);
  ASSERT_TRUE(second.start().ok());
  EXPECT_TRUE(second.took_over());
  EXPECT_EQ(second.inherited_listeners(), 1);
  EXPECT_EQ(second.adopted(), 2);
  // Until confirmed, the first refuses changes (the second owns the state now).
  EXPECT_EQ(first.put_app(d).code(), Code::kUnavailable);
  ASSERT_TRUE(second.confirm_takeover().ok());
  for (int i = 0; i < 300 && !handed; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(handed.load());
  EXPECT_TRUE(first.handed_over());
  first.stop();  // drains what it still has open, stops no instance
  const int at_stop = load.ok;
  while (load.ok < at_stop + 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  load.finish();
  EXPECT_EQ(load.failed.load(), 0) << load.first_error;
  EXPECT_EQ(pids(second), before) << "instances were restarted instead of handed over";
  // Counters carried over: the second counts the requests the first served too.
  auto s = second.app_status("web");
  ASSERT_TRUE(s.ok());
  ASSERT_FALSE(s->releases.empty());
  EXPECT_GE(s->releases[0].requests, static_cast<uint64_t>(at_stop - 50));
  // The successor is the agent now: changes go through it, the first's process is done.
  AppDesiredState next = d;
  next.generation = 2;
  next.weights = {{"v1", 100}};
  EXPECT_TRUE(second.put_app(next).ok());
  EXPECT_EQ(get_status(d.listen_port), 200);
}

TEST_F(HandoffTest, SuccessorThatGoesAwayBeforeReadyLeavesTheRunningAgentServing) {
  Agent& first = add(options());
  ASSERT_TRUE(first.start().ok());
  AppDesiredState d = serve_web(first);
  {
    auto taken = HandoffClient::take_over((dir_ / "handoff.sock").string(), 3000);
    ASSERT_TRUE(taken.ok()) << taken.status().message();
    EXPECT_EQ(taken->listeners().size(), 1u);
    // Dropped without ready(): as if the new process crashed while starting.
  }
  d.generation = 2;
  Status put = Status::Ok();
  for (int i = 0; i < 300; ++i) {
    put = first.put_app(d);
    if (put.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(put.ok()) << put.message();
  EXPECT_FALSE(first.handed_over());
  EXPECT_EQ(get_status(d.listen_port), 200);
  // It holds the data dir again: a plain second agent is refused.
  AgentOptions o2 = options();
  Agent& second = add(o2);
  EXPECT_EQ(second.start().code(), Code::kFailedPrecondition);
}

TEST_F(HandoffTest, TakeoverWithNoRunningAgentStartsAfresh) {
  AgentOptions o = options();
  o.takeover = true;
  Agent& a = add(o);
  ASSERT_TRUE(a.start().ok());
  EXPECT_FALSE(a.took_over());
  EXPECT_TRUE(a.confirm_takeover().ok());
}

TEST_F(HandoffTest, PeersThatAreNotSuccessorsChangeNothing) {
  Agent& first = add(options());
  ASSERT_TRUE(first.start().ok());
  AppDesiredState d = serve_web(first);
  auto frame = [](const std::string& body, size_t announced = 0) {
    const auto n = static_cast<uint32_t>(announced ? announced : body.size());
    std::string out{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                    static_cast<char>(n >> 8), static_cast<char>(n)};
    return out + body;
  };
  const std::vector<std::string> attacks = {
      frame("", 0xffffffffu),                         // a length over the limit
      std::string(4, '\0'),                           // an empty frame
      frame("nope!"),                                 // not JSON
      frame(R"({"op":"takeover","version":2})"),      // unknown version
      frame(R"({"op":"ready"})"),                     // out of turn
      frame(R"({"op":"takeover","version":1})", 64),  // cut short
      frame(R"(["takeover"])"),                       // not an object
  };
  for (const auto& bytes : attacks) {
    const int fd = raw_connect();
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    shutdown(fd, SHUT_WR);
    std::vector<int> fds;
    auto answer = recv_frame(fd, 8000, &fds);
    EXPECT_TRUE(fds.empty()) << "sockets went to a peer that did not ask properly";
    for (int f : fds) close(f);
    if (answer.ok()) {
      EXPECT_TRUE(answer->contains("error")) << answer->dump();
    }
    close(fd);
    EXPECT_FALSE(first.handed_over());
    d.generation += 1;
    EXPECT_TRUE(first.put_app(d).ok()) << "the agent froze after a bad peer";
  }
  EXPECT_EQ(get_status(d.listen_port), 200);
}

TEST(HandoffFrames, CarryDescriptorsAndRefuseOversizedOrMismatchedFrames) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_TRUE(send_frame(sv[0], Json{{"x", 1}}, {pipe_fds[0], pipe_fds[1]}).ok());
  std::vector<int> got;
  auto j = recv_frame(sv[1], 1000, &got);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ(j->value("x", 0), 1);
  ASSERT_EQ(got.size(), 2u);
  // The received descriptors are the same pipe, close-on-exec.
  ASSERT_EQ(write(got[1], "k", 1), 1);
  char c = 0;
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'k');
  EXPECT_TRUE(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
  for (int fd : got) close(fd);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  // Too large to send; a peer announcing too much is refused without reading it.
  EXPECT_FALSE(send_frame(sv[0], Json{{"x", std::string(kMaxFrameBytes, 'a')}}).ok());
  const std::string huge("\x7f\xff\xff\xff", 4);
  ASSERT_EQ(write(sv[0], huge.data(), huge.size()), 4);
  auto refused = recv_frame(sv[1], 1000);
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  // Nothing within the deadline.
  int quiet[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, quiet), 0);
  EXPECT_EQ(recv_frame(quiet[1], 50).status().code(), Code::kDeadlineExceeded);
  for (int fd : {sv[0], sv[1], quiet[0], quiet[1]}) close(fd);
}

}  // namespace
}  // namespace ferry
