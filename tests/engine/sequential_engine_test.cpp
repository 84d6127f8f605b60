// The runner evaluates the canary continuously with the sequential test, beside the
// fixed-interval checks, and the analysis event says which test decided and why.
#include <gtest/gtest.h>

#include "engine_fixture.h"

namespace ferry {
namespace {

Json failing_analysis(Store& store, const std::string& id) {
  auto ev = store.list_events(id, 0, 1000);
  for (const auto& e : *ev)
    if (e.type == EventType::kAnalysis && e.data.value("verdict", "") == "fail") return e.data;
  return Json();
}

TEST_F(EngineFixture, SequentialTestStopsABadCanaryLongBeforeTheIntervalCheck) {
  set_strategy([](AppSpec& a) {
    // The fixed-interval check would first look after ten minutes.
    a.analysis.interval_ms = 600'000;
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 10},
                        {.kind = CanaryStep::Kind::kAnalysis, .analysis_ms = 600'000},
                        {.kind = CanaryStep::Kind::kWeight, .weight = 100}};
  });
  deploy_and_wait("v1");
  agent_.set_behaviour("v2", {.error_rate = 0.5});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kRolledBack);
  EXPECT_NE(d.reason.find("sequential test"), std::string::npos) << d.reason;
  Json a = failing_analysis(*store_, d.id);
  EXPECT_EQ(a.value("test", ""), "sprt") << a.dump();
  const Json sprt = a["metrics"]["sprt"];
  EXPECT_GE(sprt.value("log_likelihood_ratio", 0.0), sprt.value("threshold", 1.0)) << a.dump();
  EXPECT_GT(sprt.value("canary_errors", 0), 0) << a.dump();
  EXPECT_GT(sprt.value("stable_requests", 0), 0) << a.dump();
  EXPECT_EQ(agent_.weights("web.dev"), (std::map<std::string, int>{{"v1", 100}}));
}

TEST_F(EngineFixture, IntervalChecksStillDecideWithTheSequentialTestOff) {
  set_strategy([](AppSpec& a) { a.analysis.sequential.enabled = false; });
  deploy_and_wait("v1");
  agent_.set_behaviour("v2", {.error_rate = 0.5});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kRolledBack);
  EXPECT_NE(d.reason.find("error rate"), std::string::npos) << d.reason;
  EXPECT_EQ(failing_analysis(*store_, d.id).value("test", ""), "interval");
}

TEST_F(EngineFixture, LatencyIsStillJudgedByTheIntervalChecksBesideTheSequentialTest) {
  set_strategy([](AppSpec& a) { a.analysis.latency = {{.metric = "p95", .max_ms = 50}}; });
  deploy_and_wait("v1");
  agent_.set_behaviour("v2", {.latency_ms = 400});  // slow, no errors
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(d.state, DeploymentState::kRolledBack);
  EXPECT_NE(d.reason.find("p95"), std::string::npos) << d.reason;
  EXPECT_EQ(failing_analysis(*store_, d.id).value("test", ""), "interval");
}

}  // namespace
}  // namespace ferry
