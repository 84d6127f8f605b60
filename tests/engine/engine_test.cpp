#include "engine/engine.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"
#include "engine_fixture.h"

namespace ferry {
namespace {

using testing::FakeAgent;

TEST_F(EngineFixture, FirstDeploymentGoesStraightToFullTraffic) {
  auto d = deploy_and_wait("v1");
  EXPECT_EQ(d.state, DeploymentState::kSucceeded) << d.reason;
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
  auto envs = store_->list_env_releases("web");
  ASSERT_EQ(envs->size(), 1u);
  EXPECT_EQ((*envs)[0].release, "v1");
}

TEST_F(EngineFixture, GoodCanaryWalksEveryWeightAndStopsTheOldRelease) {
  deploy_and_wait("v1");
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kSucceeded) << d.reason;
  std::vector<int> v2_weights;
  for (const auto& w : agent_.weight_history())
    if (w.count("v2")) v2_weights.push_back(w.at("v2"));
  EXPECT_NE(std::find(v2_weights.begin(), v2_weights.end(), 10), v2_weights.end());
  EXPECT_NE(std::find(v2_weights.begin(), v2_weights.end(), 50), v2_weights.end());
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v2"});
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v2", 100}}));
  auto events = store_->list_events(d.id, 0, 1000);
  bool analysed = false;
  for (const auto& e : *events)
    if (e.type == EventType::kAnalysis && e.data.value("verdict", "") == "pass") analysed = true;
  EXPECT_TRUE(analysed);
}

TEST_F(EngineFixture, BadCanaryRollsBackToStable) {
  deploy_and_wait("v1");
  agent_.set_behaviour("v2", {.error_rate = 0.5});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kRolledBack);
  EXPECT_NE(d.reason.find("error rate"), std::string::npos) << d.reason;
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v1"});
  auto events = store_->list_events(d.id, 0, 1000);
  bool rollback = false;
  for (const auto& e : *events)
    if (e.type == EventType::kRollbackStarted) {
      rollback = true;
      EXPECT_TRUE(e.data.contains("traffic_restored_ms"));
    }
  EXPECT_TRUE(rollback);
  auto envs = store_->list_env_releases("web");
  EXPECT_EQ((*envs)[0].release, "v1");
  EXPECT_FALSE(*store_->release_succeeded_in("web", "v2", "dev"));
}

// The agents drop a release's router counters once it has had no instance and no weight
// for the analysis window: the deployment's last event keeps both releases' totals.
TEST_F(EngineFixture, FinalEventKeepsTheTrafficTotalsOfBothReleases) {
  deploy_and_wait("v1");
  auto good = deploy_and_wait("v2");
  ASSERT_EQ(good.state, DeploymentState::kSucceeded) << good.reason;
  auto totals_in = [&](const std::string& id, EventType type) {
    std::map<std::string, uint64_t> requests;
    auto events = store_->list_events(id, 0, 1000);  // kept alive across the loop
    for (const auto& e : *events)
      if (e.type == type && e.data.contains("traffic"))
        for (const auto& t : e.data["traffic"])
          requests[t.at("release").get<std::string>()] = t.at("requests").get<uint64_t>();
    return requests;
  };
  auto kept = totals_in(good.id, EventType::kStepFinished);
  std::string events;
  auto listed = store_->list_events(good.id, 0, 1000);
  for (const auto& e : *listed)
    events += std::string(to_string(e.type)) + " " +
              e.data.dump(-1, ' ', false, Json::error_handler_t::replace).substr(0, 300) + "\n";
  ASSERT_EQ(kept.size(), 2u) << events;
  EXPECT_GT(kept["v2"], 0u);
  EXPECT_GT(kept["v1"], 0u);
  agent_.set_behaviour("v3", {.error_rate = 0.5});
  auto bad = deploy_and_wait("v3");
  ASSERT_EQ(bad.state, DeploymentState::kRolledBack);
  auto rolled = totals_in(bad.id, EventType::kRolledBack);
  EXPECT_GT(rolled["v3"], 0u);
  EXPECT_GT(rolled["v2"], 0u);
}

TEST_F(EngineFixture, InstancesNeverReadyHitTheProgressDeadline) {
  deploy_and_wait("v1");
  agent_.set_behaviour("v2", {.never_ready = true});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kRolledBack);
  EXPECT_NE(d.reason.find("progress deadline"), std::string::npos) << d.reason;
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v1"});
}

TEST_F(EngineFixture, CrashLoopRollsBack) {
  deploy_and_wait("v1");
  agent_.set_behaviour("v2", {.crash = true});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kRolledBack);
  EXPECT_NE(d.reason.find("crash-looping"), std::string::npos) << d.reason;
}

TEST_F(EngineFixture, FailedFirstDeploymentLeavesNothingRunning) {
  agent_.set_behaviour("v1", {.never_ready = true});
  auto d = deploy_and_wait("v1");
  EXPECT_EQ(d.state, DeploymentState::kFailed);
  EXPECT_EQ(agent_.instance_count("web.dev"), 0u);
}

TEST_F(EngineFixture, RollingReplacesInBatches) {
  set_strategy([](AppSpec& a) {
    a.instances = 3;
    a.strategy = {};
    a.strategy.kind = StrategySpec::Kind::kRolling;
    a.strategy.batch_size = 1;
  });
  deploy_and_wait("v1");
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kSucceeded) << d.reason;
  std::vector<int> w;
  for (const auto& h : agent_.weight_history())
    if (h.count("v2")) w.push_back(h.at("v2"));
  EXPECT_EQ(agent_.instance_count("web.dev"), 3u);
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v2"});
  EXPECT_EQ(d.plan.size(), 5u);  // 3 batches, stop old, finish
}

TEST_F(EngineFixture, BlueGreenKeepsOldSetThenStopsIt) {
  set_strategy([](AppSpec& a) {
    a.instances = 2;
    a.strategy = {};
    a.strategy.kind = StrategySpec::Kind::kBlueGreen;
    a.strategy.keep_old_ms = 300;
  });
  deploy_and_wait("v1");
  auto id = deploy("v2");
  // While the old set is kept, both sets run and all traffic is on the new one.
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return agent_.running_releases("web.dev").size() == 2 &&
               agent_.weights("web.dev") == std::map<std::string, int>{{"v1", 0}, {"v2", 100}};
      },
      std::chrono::seconds(5), std::chrono::milliseconds(2)));
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  EXPECT_EQ(d->state, DeploymentState::kSucceeded);
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v2"});
}

TEST_F(EngineFixture, PauseUntilPromoteWaitsForPromote) {
  set_strategy([](AppSpec& a) {
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 20},
                        {.kind = CanaryStep::Kind::kPause, .until_promote = true},
                        {.kind = CanaryStep::Kind::kWeight, .weight = 100}};
  });
  deploy_and_wait("v1");
  auto id = deploy("v2");
  ASSERT_TRUE(wait_for_event(id, "waiting_promote"));
  ASSERT_TRUE(wait_rounds(id));
  EXPECT_EQ(store_->get_deployment(id)->state, DeploymentState::kRunning);
  EXPECT_EQ(agent_.weights("web.dev").at("v2"), 20);
  ASSERT_TRUE(engine_->promote(id, "alice").ok());
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  EXPECT_EQ(d->state, DeploymentState::kSucceeded);
}

TEST_F(EngineFixture, AbortReturnsTrafficToStable) {
  set_strategy([](AppSpec& a) {
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 30},
                        {.kind = CanaryStep::Kind::kPause, .until_promote = true}};
  });
  deploy_and_wait("v1");
  auto id = deploy("v2");
  ASSERT_TRUE(wait_for_event(id, "waiting_promote"));
  ASSERT_TRUE(engine_->abort(id, "alice").ok());
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  EXPECT_EQ(d->state, DeploymentState::kAborted);
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
}

TEST_F(EngineFixture, PauseHoldsTheStepUntilResume) {
  deploy_and_wait("v1");
  auto id = deploy("v2");
  // Steps: start, weight 10, a 200 ms pause (the third step_started), analyses.
  ASSERT_TRUE(wait_for_event(id, "step_started", 3));
  ASSERT_TRUE(engine_->pause(id, "alice").ok());
  ASSERT_TRUE(wait_for_event(id, "paused"));
  const int step = store_->get_deployment(id)->current_step;
  // 20 rounds of the runner (50 ms apart at least) outlast the rest of the plan (800 ms).
  ASSERT_TRUE(wait_rounds(id, 20));
  EXPECT_EQ(store_->get_deployment(id)->state, DeploymentState::kPaused);
  EXPECT_EQ(store_->get_deployment(id)->current_step, step);
  ASSERT_TRUE(engine_->resume(id, "alice").ok());
  EXPECT_EQ(engine_->wait_final(id, std::chrono::seconds(20))->state, DeploymentState::kSucceeded);
}

TEST_F(EngineFixture, GatesHoldThenRelease) {
  std::atomic<bool> open{false};
  gates_ = [&](const DeploymentRecord&) {
    return open ? GateDecision{} : GateDecision{GateDecision::Verdict::kWait, "outside window"};
  };
  restart_engine();
  auto id = deploy("v1");
  ASSERT_TRUE(wait_for_event(id, "gate_waiting"));
  EXPECT_EQ(store_->get_deployment(id)->reason, "outside window");
  open = true;
  engine_->poke();
  EXPECT_EQ(engine_->wait_final(id, std::chrono::seconds(20))->state, DeploymentState::kSucceeded);
}

TEST_F(EngineFixture, RefusedGateFailsTheDeployment) {
  gates_ = [](const DeploymentRecord&) {
    return GateDecision{GateDecision::Verdict::kRefuse, "release not yet in staging"};
  };
  restart_engine();
  auto d = deploy_and_wait("v1");
  EXPECT_EQ(d.state, DeploymentState::kFailed);
  EXPECT_EQ(d.reason, "release not yet in staging");
}

TEST_F(EngineFixture, SecondDeploymentWhileOneRunsIsRefused) {
  deploy_and_wait("v1");
  auto id = deploy("v2");
  auto again = engine_->deploy("web", "dev", "v3", "bob");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find(id), std::string::npos);
  EXPECT_TRUE(engine_->wait_final(id, std::chrono::seconds(20)).ok());
}

TEST_F(EngineFixture, RollbackCommandReturnsToPreviousRelease) {
  deploy_and_wait("v1");
  deploy_and_wait("v2");
  auto d = engine_->rollback("web", "dev", "", "alice");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->release, "v1");
  EXPECT_EQ(engine_->wait_final(d->id, std::chrono::seconds(20))->state,
            DeploymentState::kSucceeded);
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v1"});
  EXPECT_FALSE(engine_->rollback("web", "dev", "v9", "alice").ok());
}

TEST_F(EngineFixture, SecretsAreInjectedIntoInstances) {
  secrets_ = {{"DB_PASSWORD", "s3cr3t-value"}, {"API_KEY", "a$b$$c"}};
  restart_engine();
  deploy_and_wait("v1");
  EXPECT_EQ(agent_.env_of("web.dev-v1-0").at("DB_PASSWORD"), "s3cr3t-value");
  // '$' doubled so the agent's variable expansion gives the value back unchanged.
  EXPECT_EQ(agent_.env_of("web.dev-v1-0").at("API_KEY"), "a$$b$$$$c");
  EXPECT_EQ(agent_.env_of("web.dev-v1-0").at("FERRY_RELEASE"), "v1");
}

}  // namespace
}  // namespace ferry
