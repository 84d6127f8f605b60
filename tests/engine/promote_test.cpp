// `ferry promote` applies to the step running when it arrives: it ends a timed pause as
// well as an until_promote one, is refused (kConflict, with the reason) when the running
// step cannot be promoted, and is never remembered for a later step.
#include <gtest/gtest.h>

#include "engine_fixture.h"

namespace ferry {
namespace {

int count_events(Store& store, const std::string& id, const std::string& type) {
  auto ev = store.list_events(id, 0, 1000);
  int n = 0;
  for (const auto& e : *ev) n += to_string(e.type) == type;
  return n;
}

TEST_F(EngineFixture, PromoteEndsATimedPauseAndIsNotKeptForALaterManualHold) {
  set_strategy([](AppSpec& a) {
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 20},
                        {.kind = CanaryStep::Kind::kPause, .pause_ms = 600'000},
                        {.kind = CanaryStep::Kind::kPause, .until_promote = true},
                        {.kind = CanaryStep::Kind::kWeight, .weight = 100}};
  });
  deploy_and_wait("v1");
  const std::string id = deploy("v2");
  // Steps: start, weight 20, timed pause (the third step_started).
  ASSERT_TRUE(wait_for_event(id, "step_started", 3));
  ASSERT_TRUE(engine_->promote(id, "alice").ok());
  // The ten-minute pause ends on the promote, and the manual hold is reached.
  ASSERT_TRUE(wait_for_event(id, "waiting_promote"));
  // The promote was spent on the timed pause: the manual hold holds.
  ASSERT_TRUE(wait_rounds(id));
  auto d = store_->get_deployment(id);
  EXPECT_EQ(d->state, DeploymentState::kRunning);
  EXPECT_EQ(d->current_step, 3) << "the until_promote pause must still be running";
  EXPECT_EQ(agent_.weights("web.dev").at("v2"), 20);
  auto ev = store_->list_events(id, 0, 1000);
  bool timed_ended_by_promote = false;
  for (const auto& e : *ev)
    if (e.type == EventType::kStepFinished && e.step == 2)
      timed_ended_by_promote = e.data.value("ended_by", "") == "promote";
  EXPECT_TRUE(timed_ended_by_promote);
  ASSERT_TRUE(engine_->promote(id, "alice").ok());
  EXPECT_EQ(engine_->wait_final(id, std::chrono::seconds(20))->state, DeploymentState::kSucceeded);
}

TEST_F(EngineFixture, PromoteDuringAnAnalysisIsRefusedWithTheReasonAndChangesNothing) {
  set_strategy([](AppSpec& a) {
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 10},
                        {.kind = CanaryStep::Kind::kAnalysis, .analysis_ms = 600'000},
                        {.kind = CanaryStep::Kind::kPause, .until_promote = true},
                        {.kind = CanaryStep::Kind::kWeight, .weight = 100}};
  });
  deploy_and_wait("v1");
  const std::string id = deploy("v2");
  ASSERT_TRUE(wait_for_event(id, "step_started", 3));
  Status s = engine_->promote(id, "alice");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_NE(s.message().find("cannot be promoted"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("analysis"), std::string::npos) << s.message();
  EXPECT_EQ(count_events(*store_, id, "command"), 0) << "a refused promote is not recorded";
  ASSERT_TRUE(engine_->abort(id, "alice").ok());
  EXPECT_EQ(engine_->wait_final(id, std::chrono::seconds(20))->state, DeploymentState::kAborted);
}

TEST_F(EngineFixture, PromoteWhileWaitingForGatesIsRefused) {
  gates_ = [](const DeploymentRecord&) {
    return GateDecision{GateDecision::Verdict::kWait, "outside window"};
  };
  restart_engine();
  const std::string id = deploy("v1");
  ASSERT_TRUE(wait_for_event(id, "gate_waiting"));
  Status s = engine_->promote(id, "alice");
  EXPECT_EQ(s.code(), Code::kConflict) << s.message();
  EXPECT_NE(s.message().find("gates"), std::string::npos) << s.message();
  ASSERT_TRUE(engine_->abort(id, "alice").ok());
  EXPECT_EQ(engine_->wait_final(id, std::chrono::seconds(20))->state, DeploymentState::kAborted);
}

}  // namespace
}  // namespace ferry
