// The instance state machine with a fake runtime and a fake clock: no processes, no sleeps.
#include "agent/instance_supervisor.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace ferry {
namespace {

// Records what it was asked; tests decide when an instance ends.
class FakeRuntime final : public Runtime {
 public:
  Result<RuntimeHandle> start(const LaunchSpec& l) override {
    launches.push_back(l);
    if (refuse) return invalid_argument("cannot start '" + l.argv.at(0) + "': No such file");
    const int pid = next_pid++;
    running[pid] = true;
    return RuntimeHandle{pid, 1, ""};
  }
  std::optional<int> exit_status(const RuntimeHandle& h) override {
    auto it = exits.find(h.pid);
    if (it == exits.end()) return std::nullopt;
    const int code = it->second;
    exits.erase(it);
    running.erase(h.pid);
    return code;
  }
  void stop(const RuntimeHandle& h, StopMode mode) override {
    stops.emplace_back(h.pid, mode);
    if (mode == StopMode::kKill || !ignore_term) exits[h.pid] = mode == StopMode::kKill ? -9 : -15;
  }
  bool alive(const RuntimeHandle& h) override { return running.count(h.pid) > 0; }
  bool adopt(const RuntimeHandle& h) override { return running.count(h.pid) > 0; }
  std::string log_path(const std::string& app, const std::string& inst) const override {
    return "/logs/" + app + "/" + inst + ".log";
  }

  std::vector<LaunchSpec> launches;
  std::vector<std::pair<int, StopMode>> stops;
  std::map<int, bool> running;
  std::map<int, int> exits;  // pid → exit code to report
  bool refuse = false;
  bool ignore_term = false;
  int next_pid = 100;
};

InstanceSpec spec_with_probe() {
  InstanceSpec s;
  s.id = "web-v1-0";
  s.release = "v1";
  s.port = 20001;
  s.run.command = {"/bin/app", "--port", "${PORT}", "--version", "${VERSION}"};
  s.run.env = {{"GREETING", "hello ${INSTANCE}"}};
  s.run.stop_grace_ms = 2000;
  s.checks.readiness.kind = ProbeSpec::Kind::kHttp;
  s.checks.readiness.success_threshold = 2;
  s.checks.readiness.failure_threshold = 2;
  return s;
}

class SupervisorTest : public ::testing::Test {
 protected:
  FakeRuntime rt;
  FakeClock clock{from_unix_ms(1'700'000'000'000)};
};

TEST_F(SupervisorTest, StartExpandsTheCommandAndBecomesReadyAfterEnoughProbes) {
  InstanceSupervisor s("web-v1-0", "web.production", spec_with_probe(), rt, clock);
  s.start();
  ASSERT_EQ(rt.launches.size(), 1u);
  const auto& l = rt.launches[0];
  EXPECT_EQ(l.argv, (std::vector<std::string>{"/bin/app", "--port", "20001", "--version", "v1"}));
  EXPECT_EQ(l.env.at("GREETING"), "hello web-v1-0");
  EXPECT_EQ(l.env.at("PORT"), "20001");
  EXPECT_EQ(l.env.at("FERRY_APP"), "web.production");
  EXPECT_EQ(s.status().state, InstanceState::kStarting);
  EXPECT_FALSE(s.routable());
  s.on_probe(ProbeRole::kReadiness, s.run(), true, "");
  EXPECT_EQ(s.status().state, InstanceState::kStarting);  // success_threshold 2
  s.on_probe(ProbeRole::kReadiness, s.run(), true, "");
  EXPECT_EQ(s.status().state, InstanceState::kReady);
  EXPECT_TRUE(s.routable());
  EXPECT_EQ(s.status().ready_at_ms, 1'700'000'000'000);
  // Two failures in a row make it unready (failure_threshold 2); one is not enough.
  s.on_probe(ProbeRole::kReadiness, s.run(), false, "GET /healthz answered 503");
  EXPECT_EQ(s.status().state, InstanceState::kReady);
  s.on_probe(ProbeRole::kReadiness, s.run(), false, "GET /healthz answered 503");
  EXPECT_EQ(s.status().state, InstanceState::kUnready);
  EXPECT_EQ(s.status().message, "GET /healthz answered 503");
}

TEST_F(SupervisorTest, WithoutReadinessProbeItIsReadyAtOnce) {
  auto sp = spec_with_probe();
  sp.checks.readiness.kind = ProbeSpec::Kind::kNone;
  InstanceSupervisor s("web-v1-0", "web", sp, rt, clock);
  s.start();
  EXPECT_TRUE(s.routable());
  EXPECT_FALSE(s.probed() && sp.checks.readiness.kind != ProbeSpec::Kind::kNone);
}

TEST_F(SupervisorTest, CrashIsRestartedAfterADoublingBackoff) {
  InstanceSupervisor s("web-v1-0", "web", spec_with_probe(), rt, clock);
  s.start();
  rt.exits[100] = 3;
  s.tick(0);
  EXPECT_EQ(s.status().state, InstanceState::kCrashed);
  EXPECT_EQ(s.status().last_exit_code, 3);
  EXPECT_EQ(s.status().message, "exited with code 3");
  EXPECT_EQ(s.status().restarts, 1);
  clock.advance(Duration(249));
  s.tick(0);
  EXPECT_EQ(rt.launches.size(), 1u);  // not before 250 ms
  clock.advance(Duration(1));
  s.tick(0);
  EXPECT_EQ(rt.launches.size(), 2u);
  EXPECT_EQ(s.status().state, InstanceState::kStarting);
  // Second crash: 500 ms.
  rt.exits[101] = -6;
  s.tick(0);
  EXPECT_EQ(s.status().message, "killed by signal 6");
  clock.advance(Duration(499));
  s.tick(0);
  EXPECT_EQ(rt.launches.size(), 2u);
  clock.advance(Duration(1));
  s.tick(0);
  EXPECT_EQ(rt.launches.size(), 3u);
  EXPECT_EQ(InstanceSupervisor::backoff_ms(100), 30'000);
}

TEST_F(SupervisorTest, StartTheRuntimeRefusesIsACrashWithItsReason) {
  rt.refuse = true;
  InstanceSupervisor s("web-v1-0", "web", spec_with_probe(), rt, clock);
  s.start();
  EXPECT_EQ(s.status().state, InstanceState::kCrashed);
  EXPECT_NE(s.status().message.find("No such file"), std::string::npos);
  EXPECT_EQ(s.next_deadline_ms(), clock.monotonic_ms() + 250);
}

TEST_F(SupervisorTest, ProbeResultsOfAnEarlierRunAreIgnored) {
  InstanceSupervisor s("web-v1-0", "web", spec_with_probe(), rt, clock);
  s.start();
  const uint64_t first = s.run();
  rt.exits[100] = 1;
  s.tick(0);
  clock.advance(Duration(250));
  s.tick(0);
  s.on_probe(ProbeRole::kReadiness, first, true, "");
  s.on_probe(ProbeRole::kReadiness, first, true, "");
  EXPECT_EQ(s.status().state, InstanceState::kStarting);
}

TEST_F(SupervisorTest, LivenessFailuresAfterTheGraceKillAndRestart) {
  auto sp = spec_with_probe();
  sp.checks.liveness.kind = ProbeSpec::Kind::kHttp;
  sp.checks.liveness.failure_threshold = 2;
  sp.checks.startup_grace_ms = 1000;
  InstanceSupervisor s("web-v1-0", "web", sp, rt, clock);
  s.start();
  s.on_probe(ProbeRole::kLiveness, s.run(), false, "timed out");
  s.on_probe(ProbeRole::kLiveness, s.run(), false, "timed out");
  EXPECT_TRUE(rt.stops.empty());  // within the startup grace
  clock.advance(Duration(1000));
  s.on_probe(ProbeRole::kLiveness, s.run(), false, "timed out");
  EXPECT_TRUE(rt.stops.empty());
  s.on_probe(ProbeRole::kLiveness, s.run(), false, "timed out");
  ASSERT_EQ(rt.stops.size(), 1u);
  EXPECT_EQ(rt.stops[0].second, StopMode::kKill);
  s.tick(0);
  EXPECT_EQ(s.status().state, InstanceState::kCrashed);
  EXPECT_EQ(s.status().message, "liveness failed: timed out");
  EXPECT_EQ(s.status().restarts, 1);
}

TEST_F(SupervisorTest, RetiredInstanceDrainsThenTermThenKill) {
  rt.ignore_term = true;
  InstanceSupervisor s("web-v1-0", "web", spec_with_probe(), rt, clock);
  s.start();
  s.retire();
  EXPECT_FALSE(s.routable());
  s.tick(3);  // requests in flight: wait
  EXPECT_TRUE(rt.stops.empty());
  clock.advance(Duration(1999));
  s.tick(1);
  EXPECT_TRUE(rt.stops.empty());
  s.tick(0);  // drained
  ASSERT_EQ(rt.stops.size(), 1u);
  EXPECT_EQ(rt.stops[0].second, StopMode::kGraceful);
  EXPECT_EQ(s.status().state, InstanceState::kStopping);
  clock.advance(Duration(2000));
  s.tick(0);
  EXPECT_EQ(rt.stops.size(), 1u);  // stop_grace not over yet
  clock.advance(Duration(1));
  s.tick(0);
  ASSERT_EQ(rt.stops.size(), 2u);
  EXPECT_EQ(rt.stops[1].second, StopMode::kKill);
  s.tick(0);
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.status().last_exit_code, -9);
}

TEST_F(SupervisorTest, DrainEndsAtTheDeadlineEvenWithRequestsInFlight) {
  InstanceSupervisor s("web-v1-0", "web", spec_with_probe(), rt, clock);
  s.start();
  s.retire();
  clock.advance(Duration(2000));
  s.tick(5);
  ASSERT_EQ(rt.stops.size(), 1u);
  s.tick(5);
  EXPECT_TRUE(s.stopped());
}

TEST_F(SupervisorTest, AdoptKeepsARunningInstanceAndRestartsAGoneOne) {
  rt.running[42] = true;
  InstanceStatus st;
  st.state = InstanceState::kReady;
  st.pid = 42;
  st.port = 20001;
  st.started_at_ms = to_unix_ms(clock.now()) - 5000;
  InstanceSupervisor kept("web-v1-0", "web", spec_with_probe(), rt, clock);
  kept.adopt(st, RuntimeHandle{42, 1, ""}, false);
  EXPECT_TRUE(kept.routable());
  EXPECT_EQ(kept.status().pid, 42);
  EXPECT_TRUE(rt.launches.empty());
  EXPECT_EQ(kept.env().at("PORT"), "20001");

  InstanceSupervisor gone("web-v1-1", "web", spec_with_probe(), rt, clock);
  st.pid = 43;
  gone.adopt(st, RuntimeHandle{43, 1, ""}, false);
  EXPECT_EQ(gone.status().state, InstanceState::kCrashed);
  gone.tick(0);
  EXPECT_EQ(rt.launches.size(), 1u);

  InstanceSupervisor retired("web-v0-0", "web", spec_with_probe(), rt, clock);
  retired.adopt(st, RuntimeHandle{43, 1, ""}, true);
  EXPECT_TRUE(retired.stopped());
}

TEST_F(SupervisorTest, ExitOfAnAdoptedProcessHasAnUnknownCode) {
  rt.running[42] = true;
  InstanceStatus st;
  st.state = InstanceState::kReady;
  st.pid = 42;
  InstanceSupervisor s("web-v1-0", "web", spec_with_probe(), rt, clock);
  s.adopt(st, RuntimeHandle{42, 1, ""}, false);
  rt.exits[42] = kExitUnknown;
  s.tick(0);
  EXPECT_EQ(s.status().state, InstanceState::kCrashed);
  EXPECT_NE(s.status().message.find("code unknown"), std::string::npos);
}

}  // namespace
}  // namespace ferry
