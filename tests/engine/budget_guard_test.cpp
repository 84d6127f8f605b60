// The SLO budget guard as the runner calls it (EngineContext::budget_guard, docs/slo.md
// max_budget_spend): only once the new release has traffic, with the time its first
// traffic step started (not the deployment's creation: waiting at a gate costs nothing),
// the same time after a restart, and a verdict rolls the deployment back.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "engine_fixture.h"

namespace ferry {
namespace {

class BudgetGuardTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    gates_ = [this](const DeploymentRecord& d) {
      if (d.release == "v2" && !gate_open_)
        return GateDecision{GateDecision::Verdict::kWait, "a window"};
      return GateDecision{};
    };
    budget_guard_ = [this](const DeploymentRecord& d, int64_t since) -> std::optional<std::string> {
      if (d.release != "v2") return std::nullopt;
      std::lock_guard lk(mu_);
      since_.push_back(since);
      if (spent_) return "the deployment spent 5% of the SLO's error budget";
      return std::nullopt;
    };
    set_strategy([](AppSpec& a) {
      a.rollback_policy = "resume";
      a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 20},
                          {.kind = CanaryStep::Kind::kPause, .pause_ms = 600'000}};
    });
  }
  // The time of the first step_started event of plan step `index`.
  int64_t step_started_at(const std::string& id, int index) {
    auto ev = store_->list_events(id, 0, 1000);
    for (const auto& e : *ev)
      if (e.type == EventType::kStepStarted && e.step == index) return e.time_ms;
    return -1;
  }
  std::vector<int64_t> seen() {
    std::lock_guard lk(mu_);
    return since_;
  }

  std::atomic<bool> gate_open_{false};
  std::mutex mu_;
  std::vector<int64_t> since_;
  bool spent_ = false;
};

TEST_F(BudgetGuardTest, CountsFromTheFirstTrafficStepNotTheGateWaitAndRollsBack) {
  gate_open_ = true;
  deploy_and_wait("v1");
  gate_open_ = false;
  const std::string id = deploy("v2");
  ASSERT_TRUE(wait_for_event(id, "gate_waiting"));
  ASSERT_TRUE(wait_rounds(id, 2));  // a second or more at the gate
  gate_open_ = true;
  engine_->poke();
  // Steps: start, weight 20, the ten-minute pause.
  ASSERT_TRUE(wait_for_event(id, "step_started", 3));
  ASSERT_TRUE(testing::wait_until([&] { return seen().size() >= 5; }));
  const int64_t weight_step = step_started_at(id, 1);
  const auto created = store_->get_deployment(id)->created_at_ms;
  ASSERT_GT(weight_step, created);
  for (int64_t since : seen()) EXPECT_EQ(since, weight_step);
  {
    std::lock_guard lk(mu_);
    spent_ = true;
  }
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, DeploymentState::kRolledBack);
  EXPECT_NE(d->reason.find("spent 5% of the SLO's error budget"), std::string::npos) << d->reason;
  EXPECT_EQ(agent_.weights("web.dev").count("v2") ? agent_.weights("web.dev").at("v2") : 0, 0);
}

TEST_F(BudgetGuardTest, NotCalledBeforeTrafficAndTheSameStartAfterARestart) {
  set_strategy([](AppSpec& a) {
    a.rollback_policy = "resume";
    a.strategy.steps = {{.kind = CanaryStep::Kind::kPause, .pause_ms = 600'000},
                        {.kind = CanaryStep::Kind::kWeight, .weight = 20},
                        {.kind = CanaryStep::Kind::kPause, .pause_ms = 600'000}};
  });
  gate_open_ = true;
  deploy_and_wait("v1");
  const std::string id = deploy("v2");
  // The pause before any weight: instances run, no traffic, no guard.
  ASSERT_TRUE(wait_for_event(id, "step_started", 2));
  ASSERT_TRUE(wait_rounds(id, 3));
  EXPECT_TRUE(seen().empty());
  ASSERT_TRUE(engine_->promote(id, "alice").ok());
  ASSERT_TRUE(wait_for_event(id, "step_started", 4));
  ASSERT_TRUE(testing::wait_until([&] { return !seen().empty(); }));
  const int64_t weight_step = step_started_at(id, 2);
  EXPECT_EQ(seen().back(), weight_step);
  // A new engine (a restart of the control plane) resumes the pause: the guard still
  // counts from the weight step, read back from its event.
  engine_->stop();
  {
    std::lock_guard lk(mu_);
    since_.clear();
  }
  restart_engine();
  ASSERT_TRUE(wait_for_event(id, "resumed"));
  ASSERT_TRUE(testing::wait_until([&] { return seen().size() >= 3; }));
  for (int64_t since : seen()) EXPECT_EQ(since, weight_step);
}

}  // namespace
}  // namespace ferry
