// plan_deployment and plan_rollback: the steps each strategy takes, checked directly.
#include <gtest/gtest.h>

#include <vector>

#include "core/plan.h"

namespace ferry {
namespace {

using K = PlanStep::Kind;

std::vector<K> kinds(const std::vector<PlanStep>& plan) {
  std::vector<K> out;
  for (const auto& s : plan) out.push_back(s.kind);
  return out;
}

AppSpec app_with(StrategySpec::Kind kind, int instances) {
  AppSpec a;
  a.instances = instances;
  a.strategy.kind = kind;
  return a;
}

CanaryStep weight(int w) {
  CanaryStep s;
  s.kind = CanaryStep::Kind::kWeight;
  s.weight = w;
  return s;
}

TEST(PlanDeployment, FirstDeploymentGoesStraightToFullTrafficWhateverTheStrategy) {
  for (auto kind : {StrategySpec::Kind::kRolling, StrategySpec::Kind::kBlueGreen,
                    StrategySpec::Kind::kCanary, StrategySpec::Kind::kImmediate}) {
    auto plan = plan_deployment(app_with(kind, 3), /*has_stable=*/false);
    EXPECT_EQ(kinds(plan), (std::vector<K>{K::kStart, K::kWeight, K::kFinish}))
        << strategy_name(kind);
    EXPECT_EQ(plan[0].count, 3);
    EXPECT_EQ(plan[1].weight, 100);
  }
}

TEST(PlanDeployment, RollingReplacesInBatchesWithProportionalWeight) {
  auto app = app_with(StrategySpec::Kind::kRolling, 5);
  app.strategy.batch_size = 2;
  auto plan = plan_deployment(app, true);
  ASSERT_EQ(kinds(plan), (std::vector<K>{K::kBatch, K::kBatch, K::kBatch, K::kStopOld, K::kFinish}));
  EXPECT_EQ(plan[0].count, 2);
  EXPECT_EQ(plan[0].total, 2);
  EXPECT_EQ(plan[0].weight, 40);
  EXPECT_EQ(plan[2].count, 1);  // the last batch takes what is left
  EXPECT_EQ(plan[2].total, 5);
  EXPECT_EQ(plan[2].weight, 100);
}

TEST(PlanDeployment, RollingBatchLargerThanTheSetIsOneBatch) {
  auto app = app_with(StrategySpec::Kind::kRolling, 2);
  app.strategy.batch_size = 10;
  auto plan = plan_deployment(app, true);
  ASSERT_EQ(kinds(plan), (std::vector<K>{K::kBatch, K::kStopOld, K::kFinish}));
  EXPECT_EQ(plan[0].count, 2);
}

TEST(PlanDeployment, BlueGreenWaitsForPromoteOnlyWithoutAutoPromote) {
  auto app = app_with(StrategySpec::Kind::kBlueGreen, 2);
  app.strategy.keep_old_ms = 60'000;
  EXPECT_EQ(kinds(plan_deployment(app, true)),
            (std::vector<K>{K::kStart, K::kWeight, K::kStopOld, K::kFinish}));
  app.strategy.auto_promote = false;
  auto plan = plan_deployment(app, true);
  ASSERT_EQ(kinds(plan), (std::vector<K>{K::kStart, K::kPause, K::kWeight, K::kStopOld, K::kFinish}));
  EXPECT_TRUE(plan[1].until_promote);
  EXPECT_EQ(plan[3].duration_ms, 60'000);  // the old set is kept for instant rollback
}

TEST(PlanDeployment, CanaryFollowsItsStepsAndEndsAtFullTraffic) {
  auto app = app_with(StrategySpec::Kind::kCanary, 2);
  app.analysis.window_ms = 7000;
  CanaryStep analysis;
  analysis.kind = CanaryStep::Kind::kAnalysis;  // no length: the analysis window
  CanaryStep hold;
  hold.kind = CanaryStep::Kind::kPause;
  hold.until_promote = true;
  app.strategy.steps = {weight(10), analysis, hold, weight(50)};
  auto plan = plan_deployment(app, true);
  ASSERT_EQ(kinds(plan), (std::vector<K>{K::kStart, K::kWeight, K::kAnalysis, K::kPause,
                                         K::kWeight, K::kWeight, K::kStopOld, K::kFinish}));
  EXPECT_EQ(plan[2].duration_ms, 7000);
  EXPECT_TRUE(plan[3].until_promote);
  EXPECT_EQ(plan[5].weight, 100);  // added: the steps stopped at 50%

  app.strategy.steps = {weight(10), weight(100)};
  EXPECT_EQ(kinds(plan_deployment(app, true)),
            (std::vector<K>{K::kStart, K::kWeight, K::kWeight, K::kStopOld, K::kFinish}));
}

TEST(PlanDeployment, HooksWrapTheStrategy) {
  auto app = app_with(StrategySpec::Kind::kImmediate, 1);
  app.hooks.pre_deploy.push_back(HookSpec{});
  app.hooks.post_deploy.push_back(HookSpec{});
  auto plan = plan_deployment(app, true);
  ASSERT_EQ(kinds(plan), (std::vector<K>{K::kHooks, K::kStart, K::kWeight, K::kStopOld,
                                         K::kHooks, K::kFinish}));
  EXPECT_EQ(plan.front().phase, "pre_deploy");
  EXPECT_EQ(plan[4].phase, "post_deploy");
}

TEST(PlanDeployment, StepsSurviveTheirJsonForm) {
  auto app = app_with(StrategySpec::Kind::kRolling, 4);
  app.strategy.batch_size = 3;
  for (const auto& s : plan_deployment(app, true)) {
    Json j = s;
    PlanStep back = j.get<PlanStep>();
    EXPECT_EQ(back.kind, s.kind);
    EXPECT_EQ(back.count, s.count);
    EXPECT_EQ(back.total, s.total);
    EXPECT_EQ(back.weight, s.weight);
    EXPECT_EQ(back.duration_ms, s.duration_ms);
  }
}

}  // namespace
}  // namespace ferry
