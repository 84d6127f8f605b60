// The control plane may stop at any point; an open deployment then resumes or rolls
// back (per rollback_policy) when an engine starts on the same store.
#include <gtest/gtest.h>

#include "engine_fixture.h"

namespace ferry {
namespace {

class ResumeTest : public EngineFixture {
 protected:
  std::string start_and_stop_mid_pause(const std::string& policy) {
    set_strategy([&](AppSpec& a) {
      a.rollback_policy = policy;
      a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 25},
                          {.kind = CanaryStep::Kind::kPause, .until_promote = true},
                          {.kind = CanaryStep::Kind::kWeight, .weight = 100}};
    });
    deploy_and_wait("v1");
    auto id = deploy("v2");
    EXPECT_TRUE(wait_for_event(id, "waiting_promote"));
    engine_->stop();  // the process goes away; the step stays "running" in the store
    auto d = store_->get_deployment(id);
    EXPECT_EQ(d->step_state, "running");
    EXPECT_FALSE(is_final(d->state));
    return id;
  }
};

TEST_F(ResumeTest, ResumePolicyContinuesTheOpenStep) {
  auto id = start_and_stop_mid_pause("resume");
  restart_engine();
  ASSERT_TRUE(wait_for_event(id, "resumed"));
  // The agent kept the canary weight meanwhile (data plane outlives the server).
  EXPECT_EQ(agent_.weights("web.dev").at("v2"), 25);
  EXPECT_TRUE(testing::wait_until([&] { return engine_->promote(id, "alice").ok(); }));
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  EXPECT_EQ(d->state, DeploymentState::kSucceeded);
  // No event was lost: every step that started also finished, in order.
  auto events = store_->list_events(id, 0, 1000);
  int started = 0, finished = 0;
  for (const auto& e : *events) {
    if (e.type == EventType::kStepStarted) ++started;
    if (e.type == EventType::kStepFinished) ++finished;
  }
  EXPECT_EQ(finished, static_cast<int>(d->plan.size()));
  EXPECT_GE(started, finished);
}

TEST_F(ResumeTest, RollbackPolicyRollsBackTheOpenDeployment) {
  auto id = start_and_stop_mid_pause("rollback");
  restart_engine();
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  EXPECT_EQ(d->state, DeploymentState::kRolledBack);
  EXPECT_NE(d->reason.find("restarted"), std::string::npos);
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
}

TEST_F(ResumeTest, StepThatFinishedIsNotRepeated) {
  set_strategy([&](AppSpec& a) {
    a.rollback_policy = "resume";
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 25},
                        {.kind = CanaryStep::Kind::kPause, .until_promote = true}};
  });
  deploy_and_wait("v1");
  auto id = deploy("v2");
  ASSERT_TRUE(wait_for_event(id, "waiting_promote"));
  engine_->stop();
  // Simulate a stop right after the weight step committed "done".
  auto d = store_->get_deployment(id);
  d->current_step = 1;  // the weight step (after start)
  d->step_state = "done";
  ASSERT_TRUE(store_->update_deployment(*d).ok());
  restart_engine();
  ASSERT_TRUE(wait_for_event(id, "waiting_promote", 2));
  auto events = store_->list_events(id, 0, 1000);
  int weight_starts = 0;
  for (const auto& e : *events)
    if (e.type == EventType::kStepStarted && e.step == 1) ++weight_starts;
  EXPECT_EQ(weight_starts, 1);
  ASSERT_TRUE(engine_->abort(id, "alice").ok());
  EXPECT_EQ(engine_->wait_final(id, std::chrono::seconds(20))->state, DeploymentState::kAborted);
}

}  // namespace
}  // namespace ferry
