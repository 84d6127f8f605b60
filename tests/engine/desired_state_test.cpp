// The pure functions between a deployment's position and an agent's desired state:
// build_desired_state, traffic_weights, next_generation and merge_status.
#include "engine/desired_state.h"

#include <gtest/gtest.h>

#include <set>

namespace ferry {
namespace {

TEST(TrafficWeights, SplitsBetweenNewAndStable) {
  auto w = traffic_weights("v2", "v1", 10, 1, 2);
  EXPECT_EQ(w, (std::map<std::string, int>{{"v1", 90}, {"v2", 10}}));
}

TEST(TrafficWeights, NeverSendsTrafficWhereNothingRuns) {
  // No old instances: all on the new release, whatever the step says.
  EXPECT_EQ(traffic_weights("v2", "v1", 10, 2, 0), (std::map<std::string, int>{{"v2", 100}}));
  // No new instances (rollback, or not started yet): all on the stable one.
  EXPECT_EQ(traffic_weights("v2", "v1", 50, 0, 2), (std::map<std::string, int>{{"v1", 100}}));
  // No stable release (first deployment).
  EXPECT_EQ(traffic_weights("v1", "", 10, 2, 0), (std::map<std::string, int>{{"v1", 100}}));
  // Nothing at all.
  EXPECT_TRUE(traffic_weights("v1", "", 100, 0, 0).empty());
}

TEST(TrafficWeights, ClampsOutOfRangePercentages) {
  EXPECT_EQ(traffic_weights("v2", "v1", 150, 1, 1),
            (std::map<std::string, int>{{"v1", 0}, {"v2", 100}}));
  EXPECT_EQ(traffic_weights("v2", "v1", -5, 1, 1),
            (std::map<std::string, int>{{"v1", 100}, {"v2", 0}}));
}

TEST(NextGeneration, AlwaysIncreasesEvenWhenTheClockGoesBack) {
  const SystemTime t = SystemTime(std::chrono::milliseconds(1'700'000'000'000));
  const int64_t g1 = next_generation(0, t);
  EXPECT_GT(g1, 0);
  const int64_t g2 = next_generation(g1, t - std::chrono::hours(1));
  EXPECT_EQ(g2, g1 + 1);
  EXPECT_GT(next_generation(g2, t + std::chrono::seconds(1)), g2);
}

class BuildDesiredState : public ::testing::Test {
 protected:
  void SetUp() override {
    app.name = "web";
    app.port = 8080;
    app.listen = "127.0.0.1";
    app.run.command = {"/bin/app", "--port", "${PORT}"};
    app.run.env["GREETING"] = "hi";
    v1.app = v2.app = "web";
    v1.version = "v1";
    v2.version = "v2";
    in.agent_app = "web.staging";
    in.app = &app;
    in.env = "staging";
    in.new_release = &v2;
    in.old_release = &v1;
  }
  AppSpec app;
  ReleaseRecord v1, v2;
  DesiredInputs in;
};

TEST_F(BuildDesiredState, ListsInstancesOfBothReleasesWithUniqueIdsAndTheSplit) {
  in.new_count = 1;
  in.old_count = 2;
  in.new_weight = 10;
  auto d = build_desired_state(in, 42);
  EXPECT_EQ(d.app, "web.staging");
  EXPECT_EQ(d.generation, 42);
  EXPECT_EQ(d.listen_port, 8080);
  ASSERT_EQ(d.instances.size(), 3u);
  std::set<std::string> ids;
  for (const auto& i : d.instances) ids.insert(i.id);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(d.instances[0].release, "v2");
  EXPECT_EQ(d.instances[1].release, "v1");
  EXPECT_EQ(d.weights, (std::map<std::string, int>{{"v1", 90}, {"v2", 10}}));
  const auto& env = d.instances[0].run.env;
  EXPECT_EQ(env.at("GREETING"), "hi");
  // The app and environment travel as fields of the desired state, not in the env map
  // (the agent sets FERRY_APP / FERRY_ENV from them).
  EXPECT_EQ(d.app_name, "web");
  EXPECT_EQ(d.env, "staging");
  EXPECT_EQ(env.count("FERRY_APP"), 0u);
  Json wire;
  to_json(wire, d);
  EXPECT_EQ(wire.value("app_name", ""), "web");
  EXPECT_EQ(wire.value("env", ""), "staging");
  EXPECT_EQ(env.at("FERRY_RELEASE"), "v2");
}

TEST_F(BuildDesiredState, SecretsAreTakenLiterallyAndOverrideTheAppEnv) {
  in.new_count = 1;
  in.secrets["GREETING"] = "s3cr$HOME";
  auto d = build_desired_state(in, 1);
  ASSERT_EQ(d.instances.size(), 1u);
  // The agent expands $NAME in env values; a secret's $ is doubled so it stays literal.
  EXPECT_EQ(d.instances[0].run.env.at("GREETING"), "s3cr$$HOME");
}

TEST_F(BuildDesiredState, ReleaseSnapshotWinsOverTheCurrentAppRun) {
  RunSpec snap;
  snap.command = {"/opt/old/app"};
  v1.config = Json::object();
  v1.config["run"] = snap;
  in.new_release = &v1;
  in.old_release = nullptr;
  in.new_count = 1;
  auto d = build_desired_state(in, 1);
  ASSERT_EQ(d.instances.size(), 1u);
  EXPECT_EQ(d.instances[0].run.command, std::vector<std::string>{"/opt/old/app"});
  EXPECT_EQ(d.weights, (std::map<std::string, int>{{"v1", 100}}));
}

TEST(MergeStatus, SumsCountersOfTheSameReleaseAndKeepsOthers) {
  AppStatus a, b;
  ReleaseStats r1;
  r1.release = "v1";
  r1.requests = 10;
  r1.status_5xx = 1;
  r1.latency_counts = {1, 2};
  r1.latency_sum_ms = 5;
  ReleaseStats r1b = r1;
  r1b.requests = 5;
  r1b.latency_counts = {1, 1, 1};
  ReleaseStats r2;
  r2.release = "v2";
  r2.requests = 3;
  a.releases = {r1};
  b.releases = {r1b, r2};
  a.instances.push_back(InstanceStatus{});
  b.instances.push_back(InstanceStatus{});
  merge_status(a, b);
  ASSERT_EQ(a.releases.size(), 2u);
  EXPECT_EQ(a.releases[0].requests, 15u);
  EXPECT_EQ(a.releases[0].status_5xx, 2u);
  EXPECT_EQ(a.releases[0].latency_counts, (std::vector<uint64_t>{2, 3, 1}));
  EXPECT_DOUBLE_EQ(a.releases[0].latency_sum_ms, 10);
  EXPECT_EQ(a.releases[1].release, "v2");
  EXPECT_EQ(a.instances.size(), 2u);
}

}  // namespace
}  // namespace ferry
