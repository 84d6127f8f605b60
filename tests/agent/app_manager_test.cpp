// AppManager with a fake runtime and a fake clock, its routers on a shared io pool, a real
// backend on loopback: what stays bounded however many deployments an app has had.
#include "agent/app_manager.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "agent/process.h"
#include "agent/process_runtime.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "free_port.h"
#include "router/io_pool.h"

namespace ferry {
namespace {

// A Runtime whose processes exist only in a map; safe to use from the io threads.
class MapRuntime final : public Runtime {
 public:
  Result<RuntimeHandle> start(const LaunchSpec&) override {
    std::lock_guard lk(mu_);
    const int pid = next_pid_++;
    running_.insert(pid);
    return RuntimeHandle{pid, 1, ""};
  }
  std::optional<int> exit_status(const RuntimeHandle& h) override {
    std::lock_guard lk(mu_);
    if (running_.count(h.pid)) return std::nullopt;
    return 0;
  }
  void stop(const RuntimeHandle& h, StopMode) override {
    std::lock_guard lk(mu_);
    running_.erase(h.pid);
  }
  bool alive(const RuntimeHandle& h) override {
    std::lock_guard lk(mu_);
    return running_.count(h.pid) > 0;
  }
  bool adopt(const RuntimeHandle& h) override { return alive(h); }
  std::string log_path(const std::string& app, const std::string& inst) const override {
    return "/nowhere/" + app + "/" + inst + ".log";
  }

 private:
  std::mutex mu_;
  std::set<int> running_;
  int next_pid_ = 1000;
};

class AppManagerBounds : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.fallback([](HttpRequest&) {
      HttpResponse r;
      r.body = "{}";
      return r;
    });
    ASSERT_TRUE(backend_.start().ok());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    backend_.stop();
  }
  // Polls `app`'s status until `pred` holds (real time: the manager's timers are real).
  template <typename Pred>
  static bool wait_status(AppManager& m, const std::string& app, Pred pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      auto s = m.status(app);
      if (s.ok() && pred(*s)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
  HttpServer backend_{HttpServerOptions{}};
  MapRuntime runtime_;
  FakeClock clock_{from_unix_ms(1'700'000'000'000)};
};

TEST_F(AppManagerBounds, ProbeFailureSeriesOfGoneInstancesAreRemoved) {
  metrics::CounterFamily failures("ferry_agent_probe_failures_total", "probe failures",
                                  {"app", "instance", "probe"});
  AppManagerOptions o;
  o.router_io = std::make_shared<RouterIoPool>(1);
  o.steady_tick_ms = 10;
  o.busy_tick_ms = 5;
  AppManager m(
      io_, runtime_, clock_, o, [] {}, &failures);
  const uint16_t dead = testing::free_loopback_port();  // nothing listens: every probe fails
  auto rendered = [&] {
    std::string out;
    failures.render(out);
    return out;
  };
  for (int i = 1; i <= 6; ++i) {
    const std::string rel = "v" + std::to_string(i);
    AppDesiredState d;
    d.app = "web";
    d.generation = i;
    InstanceSpec s;
    s.id = "web-" + rel + "-0";
    s.release = rel;
    s.port = dead;
    s.run.command = {"/bin/app"};
    s.run.stop_grace_ms = 100;
    s.checks.readiness.kind = ProbeSpec::Kind::kHttp;
    s.checks.readiness.path = "/healthz";
    s.checks.readiness.interval_ms = 10;
    d.instances = {s};
    ASSERT_TRUE(m.put(d).ok()) << i;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (rendered().find(s.id) == std::string::npos && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_NE(rendered().find(s.id), std::string::npos) << i << ": no failure counted";
  }
  // The five instances replaced are gone (their drains pass on the fake clock) and so are
  // their series; the last instance's stays.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until &&
         (failures.series() > 1 || m.status("web")->instances.size() > 1)) {
    clock_.advance(std::chrono::milliseconds(1000));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(m.status("web")->instances.size(), 1u);
  EXPECT_EQ(failures.series(), 1u) << rendered();
  EXPECT_NE(rendered().find("web-v6-0"), std::string::npos) << rendered();
}

// A manager destroyed while its apps' timers fire on the io threads: no tick, probe or
// timer handler that was running or queued then touches it afterwards (under ASan a read
// of the destroyed manager fails the test; it did, about once in 200 CI runs, in the test
// above).
TEST_F(AppManagerBounds, DestroyedWhileItsAppsTickNothingTouchesItAfterwards) {
  for (int round = 0; round < 40; ++round) {
    AppManagerOptions o;
    o.steady_tick_ms = 1;
    o.busy_tick_ms = 1;
    o.idle_tick_ms = 1;
    auto m = std::make_unique<AppManager>(
        io_, runtime_, clock_, o, [] {}, nullptr);
    for (int a = 0; a < 3; ++a) {
      AppDesiredState d;
      d.app = "app" + std::to_string(a);
      d.generation = 1;
      InstanceSpec s;
      s.id = d.app + "-v1-0";
      s.release = "v1";
      s.port = testing::free_loopback_port();  // nothing listens: probes fail, ticks go on
      s.run.command = {"/bin/app"};
      s.checks.readiness.kind = ProbeSpec::Kind::kHttp;
      s.checks.readiness.path = "/healthz";
      s.checks.readiness.interval_ms = 1;
      d.instances = {s};
      ASSERT_TRUE(m->put(d).ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(round % 4));
    m.reset();
  }
  // Whatever was queued for the destroyed managers runs now, on live io threads.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

TEST_F(AppManagerBounds, CountersOfOldReleasesAreDroppedAndStatusStaysBounded) {
  AppManagerOptions o;
  o.router_io = std::make_shared<RouterIoPool>(2);
  o.release_stats_keep_ms = 60'000;  // the analysis window, on the fake clock
  o.steady_tick_ms = 10;
  o.busy_tick_ms = 5;
  AppManager m(
      io_, runtime_, clock_, o, [] {}, nullptr);
  const uint16_t port = testing::free_loopback_port();
  HttpClient client(Endpoint{"127.0.0.1", port});
  std::map<int, size_t> status_bytes;
  constexpr int kDeployments = 50;
  for (int i = 1; i <= kDeployments; ++i) {
    const std::string rel = "v" + std::to_string(i);
    AppDesiredState d;
    d.app = "web";
    d.generation = i;
    d.listen_port = port;
    d.weights = {{rel, 100}};
    InstanceSpec s;
    s.id = "web-" + rel + "-0";
    s.release = rel;
    s.port = backend_.port();  // every release's instance is the one test backend
    s.run.command = {"/bin/app"};
    s.run.stop_grace_ms = 100;
    d.instances = {s};
    ASSERT_TRUE(m.put(d).ok()) << i;
    ASSERT_TRUE(wait_status(m, "web", [&](const AppStatus& st) {
      return st.instances.size() == 1 && st.instances[0].id == s.id &&
             st.instances[0].state == InstanceState::kReady;
    })) << i;
    for (int r = 0; r < 3; ++r) {
      auto resp = client.request("GET", "/");
      ASSERT_TRUE(resp.ok()) << i;
      ASSERT_EQ(resp->status, 200) << i;
    }
    // The previous release is still reported within the analysis window…
    if (i > 1) {
      auto st = m.status("web");
      ASSERT_TRUE(st.ok());
      EXPECT_EQ(st->releases.size(), 2u) << i;
    }
    // … and dropped, in the router too, once the window has passed.
    clock_.advance(std::chrono::milliseconds(60'001));
    ASSERT_TRUE(wait_status(m, "web",
                            [&](const AppStatus& st) {
                              return st.releases.size() == 1 && st.releases[0].release == rel &&
                                     st.releases[0].requests == 3 && m.router_counters("web") == 1;
                            }))
        << i << ": router keeps " << m.router_counters("web");
    Json j;
    to_json(j, *m.status("web"));
    status_bytes[i] = j.dump().size();
  }
  // Deployments faster than the window: only the few releases that left last are kept.
  for (int i = kDeployments + 1; i <= kDeployments + 12; ++i) {
    const std::string rel = "v" + std::to_string(i);
    AppDesiredState d;
    d.app = "web";
    d.generation = i;
    d.listen_port = port;
    d.weights = {{rel, 100}};
    InstanceSpec s;
    s.id = "web-" + rel + "-0";
    s.release = rel;
    s.port = backend_.port();
    s.run.command = {"/bin/app"};
    d.instances = {s};
    ASSERT_TRUE(m.put(d).ok()) << i;
    ASSERT_TRUE(wait_status(m, "web", [&](const AppStatus& st) {
      return st.instances.size() == 1 && st.instances[0].id == s.id &&
             st.instances[0].state == InstanceState::kReady;
    })) << i;
    ASSERT_EQ(client.request("GET", "/")->status, 200);
    EXPECT_LE(m.router_counters("web"), 5u) << i;
    EXPECT_LE(m.status("web")->releases.size(), 5u) << i;
  }
  // O(current instances): the 50th answer is the size of the 10th (names grow a digit).
  EXPECT_LE(status_bytes[kDeployments], status_bytes[10] + 16)
      << status_bytes[10] << " bytes at the 10th, " << status_bytes[kDeployments] << " at the "
      << kDeployments << "th";
  m.shutdown(false);
}

// Real processes: an instance's end wakes its app through a pidfd (Runtime::exit_fd), so it
// is seen at once with no polling tick, for a child of the agent and an adopted process.
class AppManagerExits : public AppManagerBounds {
 protected:
  void SetUp() override {
    AppManagerBounds::SetUp();
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-exit-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "logs");
  }
  void TearDown() override {
    AppManagerBounds::TearDown();
    std::filesystem::remove_all(dir_);
  }
  // No tick of any kind within a test: only the end's own wakeup can show it.
  static AppManagerOptions untimed() {
    AppManagerOptions o;
    o.router_io = std::make_shared<RouterIoPool>(1);
    o.idle_tick_ms = o.steady_tick_ms = o.busy_tick_ms = 600'000;
    o.housekeeping_ms = 600'000;
    return o;
  }
  static AppDesiredState sleeper(int64_t generation) {
    AppDesiredState d;
    d.app = "web";
    d.generation = generation;
    InstanceSpec s;
    s.id = "web-v1-0";
    s.release = "v1";
    s.port = testing::free_loopback_port();
    s.run.command = {"/bin/sleep", "600"};  // no probe: ready once started
    s.run.stop_grace_ms = 100;
    d.instances = {s};
    return d;
  }
  static int running_pid(AppManager& m) {
    int pid = 0;
    EXPECT_TRUE(wait_status(m, "web", [&](const AppStatus& st) {
      if (st.instances.size() != 1 || st.instances[0].state != InstanceState::kReady) return false;
      pid = st.instances[0].pid;
      return pid > 0;
    }));
    return pid;
  }
  static std::string describe(AppManager& m) {
    Json j;
    if (auto st = m.status("web"); st.ok()) to_json(j, *st);
    return j.dump();
  }
  std::filesystem::path dir_;
};

TEST_F(AppManagerExits, AKilledInstanceIsSeenAtOnceWithoutAPollingTick) {
  ProcessRuntime rt((dir_ / "logs").string(), LogPolicy{});
  AppManager m(
      io_, rt, clock_, untimed(), [] {}, nullptr);
  ASSERT_TRUE(m.put(sleeper(1)).ok());
  const int pid = running_pid(m);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // Crashed with its signal (the restart waits for the backoff on the fake clock).
  EXPECT_TRUE(wait_status(m, "web", [](const AppStatus& st) {
    return st.instances.size() == 1 && st.instances[0].state == InstanceState::kCrashed &&
           st.instances[0].last_exit_code == -SIGKILL && st.instances[0].restarts == 1;
  })) << describe(m);
  m.shutdown(true);
}

TEST_F(AppManagerExits, AnAdoptedInstanceKilledIsSeenAtOnceToo) {
  Json snapshot;
  int pid = 0;
  {
    // The first agent process starts it and goes, leaving it running.
    ProcessRuntime first((dir_ / "logs").string(), LogPolicy{});
    AppManager m(
        io_, first, clock_, untimed(), [] {}, nullptr);
    ASSERT_TRUE(m.put(sleeper(1)).ok());
    pid = running_pid(m);
    ASSERT_GT(pid, 0);
    snapshot = m.snapshot();
    m.shutdown(false);
  }
  // The next one adopts it: not its child, so no waitpid; its end still wakes the app.
  ProcessRuntime next((dir_ / "logs").string(), LogPolicy{});
  AppManager m(
      io_, next, clock_, untimed(), [] {}, nullptr);
  EXPECT_EQ(m.restore(snapshot), 1);
  ASSERT_TRUE(wait_status(m, "web", [&](const AppStatus& st) {
    return st.instances.size() == 1 && st.instances[0].pid == pid;
  }));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_TRUE(wait_status(m, "web", [](const AppStatus& st) {
    return st.instances.size() == 1 && st.instances[0].state == InstanceState::kCrashed &&
           st.instances[0].last_exit_code == kExitUnknown;
  })) << describe(m);
  int status = 0;
  waitpid(pid, &status, 0);  // the test process is its real parent
  m.shutdown(true);
}

}  // namespace
}  // namespace ferry
