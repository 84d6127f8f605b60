// `ferry rollback` is immediate: the target release's instances are started (or the ones
// keep_previous left are taken over), get all traffic once ready, and the bad ones are
// stopped, with no analysis unless the strategy is asked for. keep_previous keeps the
// last stable release's instances at weight 0 for a while after a success.
#include <gtest/gtest.h>

#include "engine_fixture.h"

namespace ferry {
namespace {

using testing::wait_until;

class RollbackTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    // An analysis that can never pass with the fake agent's traffic: a rollback that
    // went through the strategy would fail ("inconclusive"), an immediate one does not.
    set_strategy([](AppSpec& a) { a.analysis.min_requests = 1'000'000'000; });
    agent_.set_behaviour("v1", {});
    deploy_and_wait("v1");
    // v2 needs to succeed first: a healthy analysis for it.
    set_strategy([](AppSpec& a) { a.analysis.min_requests = 10; });
    EXPECT_EQ(deploy_and_wait("v2").state, DeploymentState::kSucceeded);
    set_strategy([](AppSpec& a) { a.analysis.min_requests = 1'000'000'000; });
  }
};

TEST_F(RollbackTest, RollbackIsImmediateWithoutAnalysis) {
  agent_.set_behaviour("v2", {.error_rate = 0.5});  // the bad release now serving
  auto d = engine_->rollback("web", "dev", "", "alice");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->release, "v1");
  EXPECT_EQ(d->strategy, "rollback");
  for (const auto& s : d->plan) {
    EXPECT_NE(s.value("kind", ""), "analysis") << d->plan.dump();
    EXPECT_NE(s.value("kind", ""), "pause") << d->plan.dump();
  }
  auto done = engine_->wait_final(d->id, std::chrono::seconds(20));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, DeploymentState::kSucceeded) << done->reason;
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v1"});
  auto events = store_->list_events(d->id, 0, 1000);
  for (const auto& e : *events) EXPECT_NE(e.type, EventType::kAnalysis) << e.message;
}

TEST_F(RollbackTest, WithStrategyRunsTheAppsCanaryAndItsAnalysis) {
  auto d = engine_->rollback("web", "dev", "v1", "alice", /*with_strategy=*/true);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->strategy, "canary");
  auto done = engine_->wait_final(d->id, std::chrono::seconds(20));
  // The impossible min_requests makes the analysis inconclusive: it really ran.
  EXPECT_EQ(done->state, DeploymentState::kRolledBack) << done->reason;
  EXPECT_NE(done->reason.find("inconclusive"), std::string::npos) << done->reason;
}

TEST_F(RollbackTest, TrafficStaysOnTheCurrentReleaseUntilTheTargetIsReady) {
  agent_.set_behaviour("v1", {.never_ready = true});
  const size_t before = agent_.weight_history().size();
  auto d = engine_->rollback("web", "dev", "", "alice");
  ASSERT_TRUE(d.ok());
  auto done = engine_->wait_final(d->id, std::chrono::seconds(20));
  EXPECT_EQ(done->state, DeploymentState::kRolledBack);
  EXPECT_NE(done->reason.find("progress deadline"), std::string::npos) << done->reason;
  const auto history = agent_.weight_history();
  for (size_t i = before; i < history.size(); ++i) {
    const auto& w = history[i];
    if (w.count("v1") && w.count("v2")) {
      EXPECT_EQ(w.at("v1"), 0) << "traffic to unready v1";
    }
  }
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v2", 100}}));
}

class KeepPreviousTest : public EngineFixture {
 protected:
  void keep(int ms) {
    set_strategy([ms](AppSpec& a) { a.keep_previous_ms = ms; });
  }
};

TEST_F(KeepPreviousTest, PreviousReleaseRunsAtWeightZeroThenStops) {
  keep(1500);
  deploy_and_wait("v1");
  auto d = deploy_and_wait("v2");
  ASSERT_EQ(d.state, DeploymentState::kSucceeded) << d.reason;
  // Right after success both run; the previous one has no traffic.
  EXPECT_EQ(agent_.running_releases("web.dev"), (std::set<std::string>{"v1", "v2"}));
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 0}, {"v2", 100}}));
  // When the time is up the engine stops them.
  EXPECT_TRUE(wait_until(
      [&] { return agent_.running_releases("web.dev") == std::set<std::string>{"v2"}; }));
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v2", 100}}));
}

TEST_F(KeepPreviousTest, WithoutKeepPreviousTheOldReleaseStopsAtOnce) {
  deploy_and_wait("v1");
  ASSERT_EQ(deploy_and_wait("v2").state, DeploymentState::kSucceeded);
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v2"});
}

TEST_F(KeepPreviousTest, RollbackTakesOverTheKeptInstancesWithoutStartingAny) {
  keep(600'000);
  deploy_and_wait("v1");
  ASSERT_EQ(deploy_and_wait("v2").state, DeploymentState::kSucceeded);
  // New v1 instances could never become ready now: only the kept ones can take traffic.
  agent_.set_behaviour("v1", {.never_ready = true});
  auto d = engine_->rollback("web", "dev", "", "alice");
  ASSERT_TRUE(d.ok());
  auto done = engine_->wait_final(d->id, std::chrono::seconds(20));
  EXPECT_EQ(done->state, DeploymentState::kSucceeded) << done->reason;
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
  // The release rolled back from is not kept.
  EXPECT_EQ(agent_.running_releases("web.dev"), std::set<std::string>{"v1"});
}

TEST_F(KeepPreviousTest, AnEngineRestartStillStopsTheKeptInstances) {
  keep(1500);
  deploy_and_wait("v1");
  ASSERT_EQ(deploy_and_wait("v2").state, DeploymentState::kSucceeded);
  restart_engine();  // forgets everything in memory; the store remembers
  EXPECT_TRUE(wait_until(
      [&] { return agent_.running_releases("web.dev") == std::set<std::string>{"v2"}; }));
}

}  // namespace
}  // namespace ferry
