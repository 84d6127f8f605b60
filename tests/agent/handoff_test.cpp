// Hot restart of the agent (agent/handoff.h) with real instances (ferry-demo-app) on
// loopback: a successor takes the routers' sockets under steady load with no failed
// request; a successor that goes away leaves the running agent serving; a peer that is
// not a successor changes nothing.
#include "agent/handoff.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/unix_http.h"
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
      // counts from a process that never handed over to this agent
      frame(R"({"op":"counts","listeners":[{"app":"web","host":"127.0.0.1","port":)" +
            std::to_string(d.listen_port) + R"(,"stats":[{"release":"v1","requests":1000}]}]})"),
      frame(R"({"op":"counts","listeners":7})"),  // malformed counts
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
  auto st = first.app_status("web");
  ASSERT_TRUE(st.ok());
  for (const auto& r : st->releases) EXPECT_LT(r.requests, 1000u) << "forged counts were added";
}

// Whether another open file of DATA_DIR/agent.lock could take the lock now (what a
// watchdog that starts an agent when none holds the data dir sees).
bool lock_is_free(const std::filesystem::path& dir) {
  const int fd = open((dir / "agent.lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool free = flock(fd, LOCK_SH | LOCK_NB) == 0;
  close(fd);
  return free;
}

// One raw keep-alive HTTP/1.1 exchange on `fd`: true when a 200 came back.
bool raw_get(int fd) {
  const std::string req = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return false;
  std::string got;
  char buf[4096];
  // The demo app answers a short body: read until the headers and body are in.
  while (got.find("\r\n\r\n") == std::string::npos || got.size() < got.find("\r\n\r\n") + 4) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
    const size_t head = got.find("\r\n\r\n");
    if (head == std::string::npos) continue;
    const size_t cl = got.find("Content-Length: ");
    if (cl == std::string::npos || cl > head) break;
    const size_t len = std::stoul(got.substr(cl + 16));
    while (got.size() < head + 4 + len) {
      const ssize_t m = read(fd, buf, sizeof buf);
      if (m <= 0) return false;
      got.append(buf, static_cast<size_t>(m));
    }
    break;
  }
  return got.starts_with("HTTP/1.1 200");
}

int connect_loopback(uint16_t port) {
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

uint64_t web_requests(Agent& a) {
  auto s = a.app_status("web");
  uint64_t n = 0;
  if (s.ok())
    for (const auto& r : s->releases) n += r.requests;
  return n;
}

TEST_F(HandoffTest, DataDirLockIsNeverFreeDuringAPlannedHandoff) {
  Agent& first = add(options());
  ASSERT_TRUE(first.start().ok());
  serve_web(first);
  {
    // The moment that used to be open: the running agent has sent its sockets and the
    // successor has not taken the lock yet.
    auto taken = HandoffClient::take_over((dir_ / "handoff.sock").string(), 3000);
    ASSERT_TRUE(taken.ok()) << taken.status().message();
    EXPECT_GE(taken->lock_fd(), 0) << "the lock file was not handed over";
    EXPECT_FALSE(lock_is_free(dir_)) << "the data dir is unlocked between the two processes";
  }  // dropped: the running agent resumes
  std::atomic<bool> stop{false};
  std::atomic<int> free_seen{0}, looks{0};
  std::thread watchdog([&] {
    while (!stop) {
      free_seen += lock_is_free(dir_);
      ++looks;
    }
  });
  AgentOptions o2 = options();
  o2.takeover = true;
  Agent& second = add(o2);
  ASSERT_TRUE(second.start().ok());
  ASSERT_TRUE(second.confirm_takeover().ok());
  first.stop();  // the previous process exits: its copy of the lock goes
  const int at_stop = looks;
  while (looks < at_stop + 100) std::this_thread::yield();
  stop = true;
  watchdog.join();
  EXPECT_EQ(free_seen.load(), 0) << "a watchdog saw no agent holding the data dir";
  EXPECT_FALSE(lock_is_free(dir_)) << "the successor does not hold the lock";
}

TEST_F(HandoffTest, SilentSuccessorIsAbortedAndExactlyOneAgentRemains) {
  AgentOptions o1 = options();
  o1.handoff_timeout_ms = 400;  // how long the running agent waits for "ready"
  Agent& first = add(o1);
  ASSERT_TRUE(first.start().ok());
  AppDesiredState d = serve_web(first);
  const std::set<int> before = pids(first);
  AgentOptions o2 = options();
  o2.takeover = true;
  Agent& second = add(o2);
  ASSERT_TRUE(second.start().ok());  // it has the sockets and the lock file...
  ASSERT_TRUE(second.took_over());
  // ... and says nothing until the running agent gave up on it and serves on.
  d.generation = 2;
  Status put = first.put_app(d);
  for (int i = 0; i < 500 && !put.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    put = first.put_app(d);
  }
  ASSERT_TRUE(put.ok()) << put.message();
  // Too late: the successor hears "abort" and leaves without touching anything.
  Status late = second.confirm_takeover();
  EXPECT_EQ(late.code(), Code::kFailedPrecondition) << late.message();
  EXPECT_FALSE(first.handed_over());
  second.stop();
  EXPECT_EQ(pids(first), before) << "instances were touched by the successor that left";
  EXPECT_EQ(get_status(d.listen_port), 200);
  EXPECT_FALSE(lock_is_free(dir_));
  // One agent: a plain third one is refused, and a later takeover works.
  Agent& third = add(options());
  EXPECT_EQ(third.start().code(), Code::kFailedPrecondition);
  AgentOptions o4 = options();
  o4.takeover = true;
  Agent& fourth = add(o4);
  ASSERT_TRUE(fourth.start().ok());
  ASSERT_TRUE(fourth.confirm_takeover().ok());
  EXPECT_EQ(fourth.adopted(), 2);
}

TEST_F(HandoffTest, SuccessorGoesOnWhenTheRunningAgentDiesBeforeDeciding) {
  // The running agent is a child process that hands over a listening socket and the lock
  // file, then dies (kill -9 between "sockets sent" and "commit").
  const std::string path = (dir_ / "handoff.sock").string();
  int ready_pipe[2];
  ASSERT_EQ(pipe(ready_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int lock = open((dir_ / "agent.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) _exit(3);
    HandoffServer::Hooks hooks;
    hooks.begin = [lock](bool) -> Result<Handover> {
      Handover h;
      h.lock_fd = fcntl(lock, F_DUPFD_CLOEXEC, 0);
      std::thread([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        _exit(0);  // gone before it could answer "ready"
      }).detach();
      return h;
    };
    hooks.done = [] {};
    hooks.abort = [](const std::string&) {};
    HandoffServer server(path, hooks, 10'000);
    if (!server.start().ok()) _exit(4);
    (void)!write(ready_pipe[1], "r", 1);
    for (;;) pause();
  }
  char c;
  ASSERT_EQ(read(ready_pipe[0], &c, 1), 1);
  auto taken = HandoffClient::take_over(path, 3000);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_GE(taken->lock_fd(), 0) << "the lock file was not handed over";
  EXPECT_EQ(taken->predecessor_pid(), child);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);  // dead and reaped before we answer
  Status s = taken->ready(3000);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(lock_is_free(dir_)) << "the successor must hold the data dir";
  close(ready_pipe[0]);
  close(ready_pipe[1]);
}

TEST_F(HandoffTest, RequestsServedWhileDrainingReachTheSuccessorsCounters) {
  Agent& first = add(options());
  ASSERT_TRUE(first.start().ok());
  const AppDesiredState d = serve_web(first);
  const int conn = connect_loopback(d.listen_port);  // keep-alive, accepted by the first
  ASSERT_GE(conn, 0);
  ASSERT_TRUE(raw_get(conn));
  ASSERT_TRUE(raw_get(conn));
  ASSERT_EQ(web_requests(first), 2u);
  AgentOptions o2 = options();
  o2.takeover = true;
  Agent& second = add(o2);
  ASSERT_TRUE(second.start().ok());
  ASSERT_TRUE(second.confirm_takeover().ok());
  EXPECT_EQ(web_requests(second), 2u);  // as handed over
  // The first still serves the connection it had: these three are counted there...
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(raw_get(conn)) << i;
  close(conn);
  first.stop();  // ... and sent to the second once drained
  uint64_t n = 0;
  for (int i = 0; i < 300 && (n = web_requests(second)) < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(n, 5u) << "requests served while draining are missing from the counters";
}

TEST_F(HandoffTest, AgentApiCallsSucceedThroughoutAPlannedHandoff) {
  const std::string token = std::string(32, 't');
  const std::string api_path = (dir_ / "agent.sock").string();
  // The agent API as `ferry agent` serves it (src/cli/agent_cmd.cpp): paused and handed
  // over with the routers.
  struct Api {
    HttpServer routes{HttpServerOptions{}};
    std::unique_ptr<UnixHttpServer> unix;
  };
  Api api1, api2;
  AgentOptions o1 = options();
  o1.on_handoff_begin = [&] { api1.unix->pause(5000); };
  o1.api_listener = [&] { return api1.unix->duplicate_listener(); };
  o1.on_handoff_aborted = [&] { api1.unix->resume(); };
  Agent& first = add(o1);
  ASSERT_TRUE(first.start().ok());
  add_agent_routes(api1.routes, first, token);
  api1.unix = std::make_unique<UnixHttpServer>(api_path, api1.routes);
  ASSERT_TRUE(api1.unix->start().ok());
  serve_web(first);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::thread caller([&] {
    for (int i = 0; i < 100000 && !stop; ++i) {
      auto r = unix_http_request(api_path, "GET", "/v1/apps",
                                 {{"Authorization", "Bearer " + token}}, "", 5000, 1 << 20);
      if (r.ok() && r->status == 200) {
        ++ok;
      } else if (failed++ == 0) {
        first_error = r.ok() ? "status " + std::to_string(r->status) : r.status().message();
      }
    }
  });
  while (ok < 20) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  AgentOptions o2 = options();
  o2.takeover = true;
  Agent& second = add(o2);
  ASSERT_TRUE(second.start().ok());
  ASSERT_TRUE(second.confirm_takeover().ok());
  const int inherited = second.take_api_listener();
  EXPECT_GE(inherited, 0) << "the agent API's socket was not handed over";
  add_agent_routes(api2.routes, second, token);
  api2.unix = std::make_unique<UnixHttpServer>(api_path, api2.routes);
  ASSERT_TRUE(api2.unix->start(inherited).ok());
  api1.unix->stop(false);  // the previous process leaves the file to its successor
  first.stop();
  const int at_stop = ok;
  while (ok < at_stop + 20) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  stop = true;
  caller.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  api2.unix->stop();
}

// A remote agent's API is TCP (src/common/http_server.h): its listening socket is paused
// and handed over too, so calls made while the agent restarts wait in the backlog and are
// answered by the next process; before, the port was closed and bound again after
// "commit", and calls in between were refused.
TEST_F(HandoffTest, TcpAgentApiCallsSucceedThroughoutAPlannedHandoff) {
  const std::string token = std::string(32, 't');
  std::unique_ptr<HttpServer> api1, api2;
  AgentOptions o1 = options();
  o1.on_handoff_begin = [&] { api1->pause(5000); };
  o1.api_listener = [&] { return api1->duplicate_listener(); };
  o1.on_handoff_aborted = [&] { api1->resume(); };
  Agent& first = add(o1);
  ASSERT_TRUE(first.start().ok());
  api1 = std::make_unique<HttpServer>(HttpServerOptions{});  // 127.0.0.1, a free port
  add_agent_routes(*api1, first, token);
  ASSERT_TRUE(api1->start().ok());
  const uint16_t port = api1->port();
  serve_web(first);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::thread caller([&] {
    HttpClient c(Endpoint{"127.0.0.1", port}, HttpClientOptions{5000, 1 << 20});
    c.set_header("Authorization", "Bearer " + token);
    for (int i = 0; i < 100000 && !stop; ++i) {
      auto r = c.request("GET", "/v1/apps");
      if (r.ok() && r->status == 200) {
        ++ok;
      } else if (failed++ == 0) {
        first_error = r.ok() ? "status " + std::to_string(r->status) : r.status().message();
      }
    }
  });
  while (ok < 20) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  AgentOptions o2 = options();
  o2.takeover = true;
  Agent& second = add(o2);
  ASSERT_TRUE(second.start().ok());
  ASSERT_TRUE(second.confirm_takeover().ok());
  const int inherited = second.take_api_listener();
  EXPECT_GE(inherited, 0) << "the agent API's socket was not handed over";
  HttpServerOptions ho;
  ho.port = port;
  api2 = std::make_unique<HttpServer>(ho);
  add_agent_routes(*api2, second, token);
  ASSERT_TRUE(api2->start(inherited).ok());
  EXPECT_TRUE(api2->adopted_listener());
  api1->stop();
  first.stop();
  const int at_stop = ok;
  while (ok < at_stop + 20) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  stop = true;
  caller.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  api2->stop();
}

// What an HttpServer is handed must be a listening TCP socket of its own address: anything
// else is closed and the address bound afresh.
TEST(HttpServerHandover, OnlyAListeningSocketOfItsOwnAddressIsAdopted) {
  HttpServer other{HttpServerOptions{}};
  ASSERT_TRUE(other.start().ok());
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int unbound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int wrong_port = other.duplicate_listener();
  const int dir = open("/", O_RDONLY | O_CLOEXEC);
  for (int fd : {udp, unbound, wrong_port, dir}) {
    HttpServerOptions ho;
    ho.port = static_cast<uint16_t>(testing::free_loopback_port());
    HttpServer s(ho);
    struct stat before {};
    ASSERT_EQ(fstat(fd, &before), 0);
    ASSERT_TRUE(s.start(fd).ok());
    EXPECT_FALSE(s.adopted_listener());
    EXPECT_EQ(s.port(), ho.port);
    // Closed: the number is free, or reused by the server's own new socket.
    struct stat after {};
    EXPECT_TRUE(fstat(fd, &after) != 0 || after.st_ino != before.st_ino)
        << "the refused descriptor is still open";
    s.stop();
  }
  // Paused, it answers no new connection, and they are not refused either; resumed, it
  // answers the one that waited.
  HttpServer s{HttpServerOptions{}};
  s.route("GET", "/ping", [](HttpRequest&) { return HttpResponse::json(Json{{"ok", true}}); });
  ASSERT_TRUE(s.start().ok());
  EXPECT_EQ(s.pause(1000), 0);
  std::atomic<int> status{0};
  std::thread waiter([&] {
    HttpClient c(Endpoint{"127.0.0.1", s.port()}, HttpClientOptions{10000, 1 << 20});
    auto r = c.request("GET", "/ping");
    status = r.ok() ? r->status : -1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(status.load(), 0) << "answered while paused";
  s.resume();
  waiter.join();
  EXPECT_EQ(status.load(), 200);
  s.stop();
  other.stop();
}

TEST(HandoffCounts, StatsSinceSubtractsCountersAndKeepsOnlyTheNewSamples) {
  ReleaseStats before;
  before.release = "v1";
  before.requests = 10;
  before.status_2xx = 9;
  before.status_5xx = 1;
  before.latency_counts = {4, 6};
  before.latency_sum_ms = 50;
  before.recent_latencies_ms = {1, 2, 3};
  before.sample_seq = 3;
  ReleaseStats after = before;
  after.requests = 13;
  after.status_2xx = 11;
  after.status_5xx = 2;
  after.shielded = 1;
  after.latency_counts = {5, 8};
  after.latency_sum_ms = 80;
  after.recent_latencies_ms = {1, 2, 3, 7, 8, 9};
  after.sample_seq = 6;
  ReleaseStats fresh;  // a release first seen after the handover counts whole
  fresh.release = "v2";
  fresh.requests = 2;
  fresh.status_2xx = 2;
  fresh.recent_latencies_ms = {4, 5};
  fresh.sample_seq = 2;
  ReleaseStats idle = before;  // nothing new: not reported
  idle.release = "v0";
  auto d = stats_since({before, idle}, {after, fresh, idle});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].release, "v1");
  EXPECT_EQ(d[0].requests, 3u);
  EXPECT_EQ(d[0].status_2xx, 2u);
  EXPECT_EQ(d[0].status_5xx, 1u);
  EXPECT_EQ(d[0].shielded, 1u);
  EXPECT_EQ(d[0].latency_counts, (std::vector<uint64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(d[0].latency_sum_ms, 30);
  EXPECT_EQ(d[0].recent_latencies_ms, (std::vector<double>{7, 8, 9}));
  EXPECT_EQ(d[0].sample_seq, 3u);
  EXPECT_EQ(d[1].release, "v2");
  EXPECT_EQ(d[1].requests, 2u);
  // A counter that went down (a reset) is never reported as a negative or huge count.
  ReleaseStats reset = before;
  reset.requests = 4;
  reset.sample_seq = 3;
  EXPECT_TRUE(stats_since({before}, {reset}).empty());
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
