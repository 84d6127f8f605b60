// The agent with real processes (ferry-demo-app) on loopback: instances become ready,
// crash and restart with backoff, drain and stop, and are re-adopted by a new agent.
#include "agent/agent.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "agent/agent_server.h"
#include "agent/http_agent_client.h"
#include "agent/process.h"
#include "agent/unix_http.h"
#include "common/http_client.h"
#include "test_paths.h"

namespace ferry {
namespace {

const std::string kDemo = testing::demo_app_binary();

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-agent-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (auto& a : agents_) a->stop(true);
    agents_.clear();
    std::filesystem::remove_all(dir_);
  }
  Agent& make_agent(AgentOptions o = {}) {
    // ctest runs these tests as parallel processes beside the e2e tests' agents, on one
    // host. Agents on one host need disjoint instance port ranges (docs/agent.md): one
    // agent may hand out a port another's crashed instance is about to be restarted on.
    // Each test process takes its own 100 ports below the default range.
    if (o.instance_ports.first == PortRange{}.first && o.instance_ports.last == PortRange{}.last) {
      const auto first = static_cast<uint16_t>(10000 + (getpid() % 90) * 100);
      o.instance_ports = PortRange{first, static_cast<uint16_t>(first + 99)};
    }
    o.data_dir = dir_.string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    agents_.push_back(std::make_unique<Agent>(o));
    EXPECT_TRUE(agents_.back()->start().ok());
    return *agents_.back();
  }
  static InstanceSpec instance(const std::string& id, const std::string& release,
                               std::vector<std::string> extra = {}) {
    InstanceSpec s;
    s.id = id;
    s.release = release;
    s.run.command = {kDemo, "--port", "${PORT}", "--version", "${VERSION}"};
    for (auto& e : extra) s.run.command.push_back(e);
    s.run.stop_grace_ms = 2000;
    s.checks.readiness.kind = ProbeSpec::Kind::kHttp;
    s.checks.readiness.path = "/healthz";
    s.checks.readiness.interval_ms = 50;
    s.checks.readiness.timeout_ms = 500;
    return s;
  }
  // Polls the app's status until `pred` holds or `ms` pass.
  template <typename Pred>
  static bool wait_for(Agent& a, const std::string& app, Pred pred, int ms = 5000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      auto s = a.app_status(app);
      if (s.ok() && pred(*s)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  static const InstanceStatus* find(const AppStatus& s, const std::string& id) {
    for (const auto& i : s.instances)
      if (i.id == id) return &i;
    return nullptr;
  }
  static bool ready(const AppStatus& s, const std::string& id) {
    auto* i = find(s, id);
    return i && i->state == InstanceState::kReady;
  }

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_F(AgentTest, InstanceBecomesReadyAndAnswersOnItsPort) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0"); }));
  auto s = a.app_status("web");
  const auto* i = find(*s, "web-v1-0");
  ASSERT_NE(i->port, 0);
  EXPECT_GT(i->pid, 0);
  HttpClient c(Endpoint{"127.0.0.1", i->port});
  auto r = c.request("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("\"version\":\"v1\""), std::string::npos);
  // Its output goes to its log file.
  EXPECT_TRUE(std::filesystem::exists(dir_ / "logs/web/web-v1-0.log"));
}

TEST_F(AgentTest, SlowStartIsNotReadyUntilItsHealthCheckPasses) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1", {"--slow-start-ms", "600"})};
  ASSERT_TRUE(a.put_app(d).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto s = a.app_status("web");
  EXPECT_EQ(find(*s, "web-v1-0")->state, InstanceState::kStarting);
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0"); }));
}

TEST_F(AgentTest, CrashedInstanceIsRestartedWithBackoff) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1", {"--crash-after-ms", "300"})};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(
      a, "web", [](const AppStatus& s) { return find(s, "web-v1-0")->restarts >= 2; }, 8000));
  auto s = a.app_status("web");
  EXPECT_EQ(find(*s, "web-v1-0")->last_exit_code, -SIGABRT);
}

TEST_F(AgentTest, CommandThatCannotStartIsReportedAsCrashed) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  InstanceSpec bad = instance("web-v1-0", "v1");
  bad.run.command = {"/nonexistent/ferry-no-such-binary"};
  d.instances = {bad};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) {
    auto* i = find(s, "web-v1-0");
    return i->state == InstanceState::kCrashed &&
           i->message.find("No such file") != std::string::npos;
  }));
}

TEST_F(AgentTest, InstanceLeftOutOfDesiredStateIsStopped) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1"), instance("web-v2-0", "v2")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(
      a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0") && ready(s, "web-v2-0"); }));
  const int pid = find(*a.app_status("web"), "web-v1-0")->pid;
  d.generation = 2;
  d.instances = {instance("web-v2-0", "v2")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) { return s.instances.size() == 1; }));
  EXPECT_TRUE(ready(*a.app_status("web"), "web-v2-0"));
  EXPECT_FALSE(process_alive(ProcessHandle{pid, 0}));
}

TEST_F(AgentTest, TcpAndCommandReadinessProbes) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  InstanceSpec tcp = instance("web-tcp-0", "v1");
  tcp.checks.readiness.kind = ProbeSpec::Kind::kTcp;
  InstanceSpec cmd = instance("web-cmd-0", "v1");
  cmd.checks.readiness.kind = ProbeSpec::Kind::kCommand;
  cmd.checks.readiness.command = {"/bin/sh", "-c", "test \"$FERRY_INSTANCE\" = web-cmd-0"};
  InstanceSpec never = instance("web-never-0", "v1");
  never.checks.readiness.kind = ProbeSpec::Kind::kCommand;
  never.checks.readiness.command = {"/bin/sh", "-c", "exit 3"};
  d.instances = {tcp, cmd, never};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) {
    return ready(s, "web-tcp-0") && ready(s, "web-cmd-0") &&
           find(s, "web-never-0")->message.find("exited with 3") != std::string::npos;
  })) << a.app_status("web")->instances.size();
  EXPECT_EQ(find(*a.app_status("web"), "web-never-0")->state, InstanceState::kStarting);
  // Failed probes are counted for /metrics.
  EXPECT_NE(a.metrics().expose().find("ferry_health_check_failures_total"), std::string::npos);
}

TEST_F(AgentTest, FailingLivenessRestartsTheInstance) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  InstanceSpec s = instance("web-v1-0", "v1");
  s.checks.liveness.kind = ProbeSpec::Kind::kHttp;
  s.checks.liveness.path =
      "/no-such-health";                  // the demo app answers 200 to any path but /healthz...
  s.checks.liveness.expect_status = 204;  // ...so expect a status it never sends
  s.checks.liveness.interval_ms = 50;
  s.checks.liveness.failure_threshold = 2;
  s.checks.startup_grace_ms = 100;
  d.instances = {s};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(
      a, "web",
      [](const AppStatus& st) {
        auto* i = find(st, "web-v1-0");
        return i->restarts >= 1;
      },
      8000));
}

TEST_F(AgentTest, ChangedRunReplacesAnInstanceOnlyOnceItsSuccessorIsReady) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0"); }));
  const int old_pid = find(*a.app_status("web"), "web-v1-0")->pid;
  // New environment (a rotated secret): the successor starts slowly; the old one serves.
  d.generation = 2;
  d.instances = {instance("web-v1-0", "v1", {"--slow-start-ms", "400"})};
  d.instances[0].run.env["DB_PASSWORD"] = "rotated";
  ASSERT_TRUE(a.put_app(d).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_TRUE(process_alive(ProcessHandle{old_pid, 0}));
  auto mid = a.app_status("web");
  EXPECT_EQ(mid->instances.size(), 2u);
  ASSERT_TRUE(wait_for(a, "web", [&](const AppStatus& s) {
    return s.instances.size() == 1 && ready(s, "web-v1-0") && s.instances[0].pid != old_pid;
  }));
  EXPECT_FALSE(process_alive(ProcessHandle{old_pid, 0}));
}

TEST_F(AgentTest, ReplacementsOfSeveralInstancesGoOneAtATime) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  for (int i = 0; i < 3; ++i) d.instances.push_back(instance("web-v1-" + std::to_string(i), "v1"));
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) {
    return ready(s, "web-v1-0") && ready(s, "web-v1-1") && ready(s, "web-v1-2");
  }));
  std::set<int> old_pids;
  auto before = a.app_status("web");  // kept: a range-for over a temporary's member dangles
  for (const auto& i : before->instances) old_pids.insert(i.pid);
  d.generation = 2;
  for (auto& i : d.instances) {
    i.run.env["DB_PASSWORD"] = "rotated";
    i.run.command.push_back("--slow-start-ms");
    i.run.command.push_back("150");
  }
  ASSERT_TRUE(a.put_app(d).ok());
  // Never more than one successor starting, never fewer than three instances serving.
  int most_processes = 0;
  bool done = false;
  for (int t = 0; t < 400 && !done; ++t) {
    auto s = a.app_status("web");
    int running = 0, ready_count = 0, fresh_ready = 0;
    for (const auto& i : s->instances) {
      if (i.pid > 0) ++running;
      if (i.state == InstanceState::kReady) {
        ++ready_count;
        if (!old_pids.count(i.pid)) ++fresh_ready;
      }
    }
    most_processes = std::max(most_processes, running);
    EXPECT_GE(ready_count, 3) << "an instance stopped before its successor was ready";
    done = fresh_ready == 3 && s->instances.size() == 3;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(done);
  EXPECT_LE(most_processes, 4);
  for (int pid : old_pids) EXPECT_FALSE(process_alive(ProcessHandle{pid, 0}));
}

TEST_F(AgentTest, OlderGenerationIsIgnored) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 5;
  d.weights = {{"v1", 100}};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(a.set_weights("web", 4, {{"v1", 0}}).ok());
  EXPECT_EQ(a.app_status("web")->weights.at("v1"), 100);
  ASSERT_TRUE(a.set_weights("web", 6, {{"v1", 50}}).ok());
  EXPECT_EQ(a.app_status("web")->weights.at("v1"), 50);
}

TEST_F(AgentTest, BadDesiredStateIsRefusedWithItsReason) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.instances = {instance("x", "v1"), instance("x", "v1")};
  Status s = a.put_app(d);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("listed twice"), std::string::npos);
  d.instances = {instance("../../etc/x", "v1")};
  EXPECT_EQ(a.put_app(d).code(), Code::kInvalidArgument);
  d.app = "..";
  d.instances = {};
  EXPECT_EQ(a.put_app(d).code(), Code::kInvalidArgument);
  d.app = "web";
  d.weights = {{"v1", -1}};
  EXPECT_EQ(a.put_app(d).code(), Code::kInvalidArgument);
}

TEST_F(AgentTest, NewAgentReadoptsRunningInstancesFromTheStateFile) {
  int pid = 0;
  {
    AgentOptions o;
    o.data_dir = dir_.string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    Agent first(o);
    ASSERT_TRUE(first.start().ok());
    AppDesiredState d;
    d.app = "web";
    d.generation = 3;
    d.instances = {instance("web-v1-0", "v1")};
    ASSERT_TRUE(first.put_app(d).ok());
    ASSERT_TRUE(wait_for(first, "web", [](const AppStatus& s) { return ready(s, "web-v1-0"); }));
    pid = find(*first.app_status("web"), "web-v1-0")->pid;
    first.stop(false);  // as after kill -9: the instance keeps running
  }
  ASSERT_TRUE(process_alive(ProcessHandle{pid, 0}));
  auto mode = std::filesystem::status(dir_ / "agent-state.json").permissions();
  EXPECT_EQ(mode & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  Agent& second = make_agent();
  EXPECT_EQ(second.adopted(), 1);
  auto s = second.app_status("web");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->generation, 3);
  EXPECT_EQ(find(*s, "web-v1-0")->pid, pid);
  EXPECT_EQ(find(*s, "web-v1-0")->state, InstanceState::kReady);
}

TEST_F(AgentTest, ApiNeedsTheTokenAndSetsDesiredState) {
  Agent& a = make_agent();
  HttpServer http(HttpServerOptions{});
  const std::string token(32, 'k');
  add_agent_routes(http, a, token);
  ASSERT_TRUE(http.start().ok());
  HttpClient anon(Endpoint{"127.0.0.1", http.port()});
  auto r = anon.request("GET", "/v1/apps");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(anon.request("GET", "/v1/health")->status, 200);
  HttpAgentClient wrong(Endpoint{"127.0.0.1", http.port()}, std::string(32, 'x'));
  EXPECT_EQ(wrong.app_status("web").status().code(), Code::kUnauthenticated);
  HttpAgentClient c(Endpoint{"127.0.0.1", http.port()}, token);
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.weights = {{"v1", 100}};
  d.instances = {instance("web-v1-0", "v1")};
  ASSERT_TRUE(c.put_app(d).ok());
  ASSERT_TRUE(c.set_weights("web", 2, {{"v1", 70}}).ok());
  auto s = c.app_status("web");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->weights.at("v1"), 70);
  EXPECT_EQ(s->instances.size(), 1u);
  EXPECT_EQ(c.app_status("nope").status().code(), Code::kNotFound);
  http.stop();
}

// A free loopback port for a test's router (bound and released at once).
uint16_t some_free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST_F(AgentTest, PutIsAcceptedAtOnceWithTheGenerationItConvergesTo) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 7;
  d.instances = {instance("web-v1-0", "v1", {"--slow-start-ms", "400"})};
  auto g = a.accept(d);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 7);
  // Accepted, not yet ready: the caller watches the status for convergence.
  auto s = a.app_status("web");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->generation, 7);
  EXPECT_FALSE(ready(*s, "web-v1-0"));
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& st) {
    return st.applied_generation == 7 && ready(st, "web-v1-0");
  }));
  // An older generation is answered with the current one and changes nothing.
  d.generation = 3;
  d.instances.clear();
  EXPECT_EQ(*a.accept(d), 7);
  EXPECT_EQ(a.app_status("web")->instances.size(), 1u);
}

TEST_F(AgentTest, ManyAppsConvergeConcurrentlyOnAFixedSetOfThreads) {
  AgentOptions o;
  o.io_threads = 2;
  Agent& a = make_agent(o);
  const int threads_before = a.threads();
  constexpr int kApps = 24;
  for (int i = 0; i < kApps; ++i) {
    AppDesiredState d;
    d.app = "app" + std::to_string(i);
    d.generation = 1;
    d.instances = {instance(d.app + "-v1-0", "v1")};
    ASSERT_TRUE(a.put_app(d).ok());
  }
  for (int i = 0; i < kApps; ++i) {
    const std::string app = "app" + std::to_string(i);
    ASSERT_TRUE(wait_for(
        a, app, [&](const AppStatus& s) { return ready(s, app + "-v1-0"); }, 20000))
        << app;
  }
  EXPECT_EQ(a.threads(), threads_before);  // no thread per app or per instance
  // Every instance got its own port from the agent's range.
  std::set<uint16_t> ports;
  for (int i = 0; i < kApps; ++i)
    ports.insert(a.app_status("app" + std::to_string(i))->instances[0].port);
  EXPECT_EQ(ports.size(), static_cast<size_t>(kApps));
}

// Threads of this process now (each is a directory under /proc/self/task).
int process_threads() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

TEST_F(AgentTest, ThreadsDoNotGrowWithTheNumberOfApps) {
  AgentOptions o;
  o.io_threads = 2;
  o.router_threads = 2;
  Agent& a = make_agent(o);
  std::map<std::string, uint16_t> ports;
  auto put = [&](const std::string& app, bool with_instance) {
    AppDesiredState d;
    d.app = app;
    d.generation = 1;
    d.weights = {{"v1", 100}};
    if (with_instance) d.instances = {instance(app + "-v1-0", "v1")};
    // Every app has its router on its own port. A free port can be taken by another test
    // process before the agent binds it (tests run side by side): then another one.
    Status st = internal_error("not tried");
    for (int attempt = 0; attempt < 3 && !st.ok(); ++attempt) {
      d.listen_port = some_free_port();
      st = a.put_app(d);
    }
    ASSERT_TRUE(st.ok()) << app << ": " << st.to_string();
    ports[app] = d.listen_port;
  };
  put("one", true);
  ASSERT_TRUE(wait_for(a, "one", [](const AppStatus& s) { return ready(s, "one-v1-0"); }));
  const int with_one = process_threads();
  // 30 more apps, each with a router and a few with an instance (probes are timers).
  constexpr int kApps = 30;
  for (int i = 0; i < kApps; ++i) put("app" + std::to_string(i), i % 10 == 0);
  for (int i = 0; i < kApps; i += 10) {
    const std::string app = "app" + std::to_string(i);
    ASSERT_TRUE(wait_for(
        a, app, [&](const AppStatus& s) { return ready(s, app + "-v1-0"); }, 20000))
        << app;
  }
  // The routers serve, all on the shared io threads: 200 through the ones with a ready
  // instance, 503 through the others.
  for (int i = 0; i < kApps; i += 5) {
    HttpClient c(Endpoint{"127.0.0.1", ports["app" + std::to_string(i)]});
    auto r = c.request("GET", "/");
    ASSERT_TRUE(r.ok()) << i;
    EXPECT_EQ(r->status, i % 10 == 0 ? 200 : 503) << i;
  }
  EXPECT_EQ(process_threads(), with_one) << "threads with 1 app: " << with_one;
}

TEST_F(AgentTest, InstancePortsComeFromTheConfiguredRange) {
  AgentOptions o;
  o.instance_ports = PortRange{23100, 23109};
  Agent& a = make_agent(o);
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1"), instance("web-v1-1", "v1")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(
      a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0") && ready(s, "web-v1-1"); }));
  auto st = a.app_status("web");  // kept alive across the loop (not a temporary's member)
  ASSERT_TRUE(st.ok());
  for (const auto& i : st->instances) {
    EXPECT_GE(i.port, 23100);
    EXPECT_LE(i.port, 23109);
  }
}

TEST_F(AgentTest, PublicPortIsHeldFromThePutEvenWithNoInstances) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.listen_port = some_free_port();
  ASSERT_TRUE(a.put_app(d).ok());
  // Nobody else can take it now: binding it fails, connecting to it reaches the router.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(d.listen_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);
  HttpClient c(Endpoint{"127.0.0.1", d.listen_port});
  auto r = c.request("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);  // no ready instance yet
}

TEST_F(AgentTest, PutOnAPortInUseIsRefusedAndChangesNothing) {
  Agent& a = make_agent();
  HttpServer other(HttpServerOptions{});
  ASSERT_TRUE(other.start().ok());
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.listen_port = other.port();
  d.instances = {instance("web-v1-0", "v1")};
  Status s = a.put_app(d);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find(std::to_string(other.port())), std::string::npos) << s.message();
  EXPECT_EQ(a.app_status("web").status().code(), Code::kNotFound);
  other.stop();
}

TEST_F(AgentTest, StatusLeavesOutCountersOfReleasesThatLeft) {
  AgentOptions o;
  o.release_stats_keep_ms = 0;  // the analysis window, made 0 for the test
  Agent& a = make_agent(o);
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.listen_port = some_free_port();
  d.weights = {{"v1", 100}};
  d.instances = {instance("web-v1-0", "v1")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0"); }));
  HttpClient c(Endpoint{"127.0.0.1", d.listen_port});
  ASSERT_EQ(c.request("GET", "/")->status, 200);
  ASSERT_EQ(a.app_status("web")->releases.size(), 1u);
  d.generation = 2;
  d.weights = {{"v2", 100}};
  d.instances = {instance("web-v2-0", "v2")};
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) {
    return s.instances.size() == 1 && ready(s, "web-v2-0");
  }));
  ASSERT_EQ(c.request("GET", "/")->status, 200);
  // v1 has no instance and no weight and its window is over: only v2 is reported.
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) {
    return s.releases.size() == 1 && s.releases[0].release == "v2";
  }));
}

TEST_F(AgentTest, StateFileKeepsNoEnvironmentValueInClear) {
  Agent& a = make_agent();
  AppDesiredState d;
  d.app = "web";
  d.generation = 1;
  d.instances = {instance("web-v1-0", "v1")};
  d.instances[0].run.env["DB_PASSWORD"] = "hunter2-very-secret";
  ASSERT_TRUE(a.put_app(d).ok());
  ASSERT_TRUE(wait_for(a, "web", [](const AppStatus& s) { return ready(s, "web-v1-0"); }));
  a.stop(false);
  std::ifstream f(dir_ / "agent-state.json");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str().find("hunter2-very-secret"), std::string::npos);
  EXPECT_NE(ss.str().find("env_sealed"), std::string::npos);
  // A new agent with the same key opens it and re-adopts the instance with its env.
  Agent& b = make_agent();
  EXPECT_EQ(b.adopted(), 1);
  EXPECT_EQ(find(*b.app_status("web"), "web-v1-0")->state, InstanceState::kReady);
  b.stop(false);
  std::ifstream saved(dir_ / "agent-state.json");
  ss.str("");
  ss << saved.rdbuf();
  EXPECT_EQ(ss.str().find("hunter2-very-secret"), std::string::npos);
  // Another key cannot open it: the agent refuses to start, naming the file.
  AgentOptions wrong;
  wrong.data_dir = dir_.string();
  wrong.state_key = std::string(32, 'X');
  Agent c(wrong);
  Status s = c.start();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("agent-state.json"), std::string::npos) << s.message();
  c.stop(false);
  // …and did not overwrite it.
  std::ifstream again(dir_ / "agent-state.json");
  std::stringstream ss2;
  ss2 << again.rdbuf();
  EXPECT_EQ(ss2.str(), ss.str());
}

TEST_F(AgentTest, LocalApiOnAUnixSocketNeedsTheTokenAndIsOwnerOnly) {
  Agent& a = make_agent();
  HttpServer routes(HttpServerOptions{});
  const std::string token(32, 'k');
  add_agent_routes(routes, a, token);
  const std::string sock = (dir_ / "agent.sock").string();
  UnixHttpServer server(sock, routes);
  ASSERT_TRUE(server.start().ok());
  struct stat st {};
  ASSERT_EQ(stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  HttpAgentClient wrong(HttpAgentClient::UnixSocket{sock}, std::string(32, 'x'));
  EXPECT_EQ(wrong.app_status("web").status().code(), Code::kUnauthenticated);
  HttpAgentClient c(HttpAgentClient::UnixSocket{sock}, token);
  EXPECT_TRUE(c.health().ok());
  AppDesiredState d;
  d.app = "web";
  d.generation = 4;
  d.instances = {instance("web-v1-0", "v1")};
  ASSERT_TRUE(c.put_app(d).ok());
  EXPECT_EQ(c.last_accepted_generation(), 4);
  auto s = c.app_status("web");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->generation, 4);
  EXPECT_EQ(c.address(), "unix:" + sock);
  server.stop();
  EXPECT_FALSE(std::filesystem::exists(sock));
  EXPECT_EQ(c.health().code(), Code::kUnavailable);
}

// Runs in a forked child as user `uid`: 0 when /v1/health answered 200 over the socket,
// 2 when connect() failed, 1 when the connection gave no answer. Raw syscalls only (the
// parent has threads: no allocation after fork).
int health_as_user(const std::string& sock, uid_t uid) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgid(uid) != 0 || setuid(uid) != 0) _exit(3);
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(2);
    const char req[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) < 0) _exit(1);
    pollfd p{fd, POLLIN, 0};
    char buf[16] = {};
    if (poll(&p, 1, 2000) != 1 || read(fd, buf, 12) != 12) _exit(1);
    _exit(std::memcmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(AgentTest, LocalApiSocketRefusesOtherUsers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  Agent& a = make_agent();
  HttpServer routes(HttpServerOptions{});
  add_agent_routes(routes, a, std::string(32, 'k'));
  // The data dir lets others traverse, so only the socket's own checks are tested.
  std::filesystem::permissions(dir_, std::filesystem::perms::all);
  const std::string sock = (dir_ / "agent.sock").string();
  UnixHttpServer server(sock, routes);
  ASSERT_TRUE(server.start().ok());
  EXPECT_EQ(health_as_user(sock, 0), 0);
  EXPECT_EQ(health_as_user(sock, 65534), 2);  // mode 0600: connect is refused
  chmod(sock.c_str(), 0666);
  EXPECT_EQ(health_as_user(sock, 65534), 1);  // peer credentials: closed unanswered
  server.stop();
}

TEST(TokenFile, GroupReadableTokenFileIsRefused) {
  const std::string path = "/tmp/ferry-token-test-" + std::to_string(getpid());
  std::ofstream(path) << std::string(32, 'a') << "\n";
  chmod(path.c_str(), 0644);
  EXPECT_EQ(read_token_file(path).status().code(), Code::kFailedPrecondition);
  chmod(path.c_str(), 0600);
  auto t = read_token_file(path);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, std::string(32, 'a'));
  std::ofstream(path) << "short\n";
  EXPECT_EQ(read_token_file(path).status().code(), Code::kInvalidArgument);
  std::filesystem::remove(path);
}

TEST(ExpandVars, ReplacesKnownAndEnvironmentNames) {
  setenv("FERRY_TEST_X", "from-env", 1);
  EXPECT_EQ(expand_vars("--port=${PORT} $VERSION $$ ${FERRY_TEST_X} ${NOPE}x",
                        {{"PORT", "81"}, {"VERSION", "v2"}}),
            "--port=81 v2 $ from-env x");
  // Secrets reach the agent with '$' doubled (engine/desired_state.cpp): taken literally.
  EXPECT_EQ(expand_vars("pa$$$$w0rd$$HOME", {}), "pa$$w0rd$HOME");
}

}  // namespace
}  // namespace ferry
