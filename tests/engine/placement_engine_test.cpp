// Placement in the engine (issue 16): `instances` is the environment's total, each agent
// gets only its share, instance ids are unique across hosts, readiness is counted per host
// by the share, the placement is stored with the deployment and kept across a resume, and
// each host's router binds its own listen address.
#include <gtest/gtest.h>

#include "engine/placing.h"
#include "engine_fixture.h"

namespace ferry {
namespace {

class PlacementEngineTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    more_agents_ = {&b_, &c_};
    config_.apps[0].instances = 4;
    config_.apps[0].progress_deadline_ms = 2000;
    restart_engine();
  }
  std::vector<DeploymentEvent> placed_events(const std::string& id) {
    std::vector<DeploymentEvent> out;
    auto ev = store_->list_events(id, 0, 1000);
    if (ev.ok())
      for (const auto& e : *ev)
        if (e.type == EventType::kPlaced) out.push_back(e);
    return out;
  }
  std::set<std::string> all_ids(const std::string& app) {
    std::set<std::string> out;
    for (auto* a : {&agent_, &b_, &c_}) {
      auto ids = a->instance_ids(app);
      out.insert(ids.begin(), ids.end());
    }
    return out;
  }

  testing::FakeAgent b_{"b"}, c_{"c"};
};

TEST_F(PlacementEngineTest, InstancesAreTheEnvironmentsTotalWithUniqueIds) {
  auto d = deploy_and_wait("v1");
  ASSERT_EQ(to_string(d.state), "succeeded") << d.reason;
  // 4 over 3 hosts: 2, 1, 1 — not 4 on each.
  EXPECT_EQ(agent_.instance_ids("web.dev"),
            (std::set<std::string>{"web.dev-v1-0", "web.dev-v1-3"}));
  EXPECT_EQ(b_.instance_ids("web.dev"), (std::set<std::string>{"web.dev-v1-1"}));
  EXPECT_EQ(c_.instance_ids("web.dev"), (std::set<std::string>{"web.dev-v1-2"}));
  EXPECT_EQ(all_ids("web.dev").size(), 4u);  // unique across hosts
  auto placed = placed_events(d.id);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_NE(placed[0].message.find("local: 2, b: 1, c: 1"), std::string::npos) << placed[0].message;
  EXPECT_EQ(placed[0].data["per_agent"]["b"], 1);
}

TEST_F(PlacementEngineTest, ACanaryReplacesEachHostsShareOnly) {
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  auto d = deploy_and_wait("v2");
  ASSERT_EQ(to_string(d.state), "succeeded") << d.reason;
  EXPECT_EQ(all_ids("web.dev"), (std::set<std::string>{"web.dev-v2-0", "web.dev-v2-1",
                                                       "web.dev-v2-2", "web.dev-v2-3"}));
  EXPECT_EQ(b_.instance_count("web.dev"), 1u);
  // The old release was placed as it ran (the v1 deployment's placement).
  auto placed = placed_events(d.id);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].data["placement"]["old"],
            Json(std::vector<std::string>{"local", "b", "c", "local"}));
}

TEST_F(PlacementEngineTest, SpreadByAndMaxPerAgentComeFromTheConfig) {
  config_.agents = {{.name = "local", .labels = {{"zone", "z1"}}},
                    {.name = "b", .labels = {{"zone", "z1"}}},
                    {.name = "c", .labels = {{"zone", "z2"}}}};
  config_.environments[0].spread_by = "zone";
  config_.environments[0].max_per_agent = 2;
  restart_engine();
  auto d = deploy_and_wait("v1");
  ASSERT_EQ(to_string(d.state), "succeeded") << d.reason;
  // Zones z1 (local, b) and z2 (c) get 2 each.
  EXPECT_EQ(agent_.instance_count("web.dev"), 1u);
  EXPECT_EQ(b_.instance_count("web.dev"), 1u);
  EXPECT_EQ(c_.instance_count("web.dev"), 2u);
}

TEST_F(PlacementEngineTest, AnImpossiblePlacementFailsBeforeAnyAgentIsTold) {
  config_.environments[0].max_per_agent = 1;  // 3 agents, 4 instances
  restart_engine();
  auto d = deploy_and_wait("v1");
  EXPECT_EQ(to_string(d.state), "failed");
  EXPECT_NE(d.reason.find("cannot place 4 instance(s) of web in environment dev"),
            std::string::npos)
      << d.reason;
  EXPECT_NE(d.reason.find("max_per_agent 1"), std::string::npos) << d.reason;
  for (auto* a : {&agent_, &b_, &c_}) EXPECT_EQ(a->instance_count("web.dev"), 0u) << a->name();
}

TEST_F(PlacementEngineTest, ReadinessWaitsForEachHostsOwnShare) {
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  c_.set_behaviour("v2", {.never_ready = true});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(to_string(d.state), "rolled_back");
  // c's one v2 instance is not ready; local's two ready ones do not count for it.
  EXPECT_NE(d.reason.find("agent c: 0 of 1 ready"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("(local: 2, b: 1, c: 1)"), std::string::npos) << d.reason;
}

TEST_F(PlacementEngineTest, ThePlacementIsStoredAndKeptAcrossAResume) {
  set_strategy([&](AppSpec& a) {
    a.rollback_policy = "resume";
    a.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 25},
                        {.kind = CanaryStep::Kind::kPause, .until_promote = true}};
  });
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  auto id = deploy("v2");
  ASSERT_TRUE(wait_for_event(id, "waiting_promote"));
  auto stored = stored_placement(*store_, id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->new_release, (std::vector<std::string>{"local", "b", "c", "local"}));
  // The server restarts with the agents in another order: a fresh placement would move
  // slot 1 to c; the resumed deployment keeps the stored one.
  engine_->stop();
  more_agents_ = {&c_, &b_};
  restart_engine();
  ASSERT_TRUE(wait_for_event(id, "waiting_promote", 2));
  for (int i = 0; i < 100 && !engine_->promote(id, "alice").ok(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto d = engine_->wait_final(id, std::chrono::seconds(20));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(to_string(d->state), "succeeded") << d->reason;
  EXPECT_EQ(placed_events(id).size(), 1u);  // placed once, not again on the resume
  EXPECT_EQ(b_.instance_ids("web.dev"), (std::set<std::string>{"web.dev-v2-1"}));
  EXPECT_EQ(c_.instance_ids("web.dev"), (std::set<std::string>{"web.dev-v2-2"}));
}

TEST_F(PlacementEngineTest, EachHostsRouterBindsItsOwnListen) {
  config_.agents = {{.name = "b", .address = "10.0.0.2:7071", .listen = "10.0.0.2"},
                    {.name = "c", .address = "10.0.0.3:7071"}};
  restart_engine();
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  EXPECT_EQ(agent_.listen_host("web.dev"), "127.0.0.1");  // local: the app's default
  EXPECT_EQ(b_.listen_host("web.dev"), "10.0.0.2");       // agents.b.listen
  EXPECT_EQ(c_.listen_host("web.dev"), "0.0.0.0");        // remote, none of its own
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// The analysis adds up every host's router; when one host's share of the canary fails and
// the others' does not, the failed verdict (event and reason) names that host.
TEST_F(PlacementEngineTest, AFailedVerdictNamesTheHostMuchWorseThanTheOthers) {
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  c_.set_behaviour("v2", {.error_rate = 0.6});  // only host c serves v2 badly
  // Enough of c's traffic per read that the first failed look already holds the 5 errors a
  // host needs to be named (with 8 canary requests a read, the sequential test could stop
  // the canary at 4 and name nobody).
  c_.set_requests_per_poll(200);
  auto d = deploy_and_wait("v2");
  ASSERT_EQ(to_string(d.state), "rolled_back") << d.reason;
  EXPECT_NE(d.reason.find("worst on agent c: "), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("on local, b"), std::string::npos) << d.reason;
  bool named = false;
  auto ev = store_->list_events(d.id, 0, 1000);
  ASSERT_TRUE(ev.ok());
  for (const auto& e : *ev)
    if (e.type == EventType::kAnalysis && e.data.value("worst_host", "") == "c") {
      named = true;
      EXPECT_TRUE(e.data["hosts"].contains("b")) << e.data.dump();
    }
  EXPECT_TRUE(named);
}

// One bad host among busy good ones: the sum passes (c's errors are ~2% of all requests),
// but c fails max_error_rate on its own and is much worse than the others, so the step
// fails naming c (analysis.per_host, on by default). With per_host: false the same canary
// passes — what the sum alone decides.
TEST_F(PlacementEngineTest, ABadHostDilutedByGoodOnesFailsTheStepOnItsOwn) {
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  agent_.set_requests_per_poll(400);
  b_.set_requests_per_poll(400);
  c_.set_requests_per_poll(20);
  c_.set_behaviour("v2", {.error_rate = 0.5});
  auto d = deploy_and_wait("v2");
  ASSERT_EQ(to_string(d.state), "rolled_back") << d.reason;
  EXPECT_NE(d.reason.find("one host much worse than the others: on agent c: "), std::string::npos)
      << d.reason;
  bool per_host_event = false;
  auto ev = store_->list_events(d.id, 0, 1000);
  ASSERT_TRUE(ev.ok());
  for (const auto& e : *ev)
    if (e.type == EventType::kAnalysis && e.data.value("test", "") == "per_host") {
      per_host_event = true;
      EXPECT_EQ(e.data.value("worst_host", ""), "c") << e.data.dump();
    }
  EXPECT_TRUE(per_host_event);
}

TEST_F(PlacementEngineTest, WithPerHostOffOnlyTheSumJudges) {
  set_strategy([](AppSpec& a) { a.analysis.per_host = false; });
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  agent_.set_requests_per_poll(400);
  b_.set_requests_per_poll(400);
  c_.set_requests_per_poll(20);
  c_.set_behaviour("v2", {.error_rate = 0.5});
  auto d = deploy_and_wait("v2");
  EXPECT_EQ(to_string(d.state), "succeeded") << d.reason;
}

// A release bad everywhere is the release's fault: no host is named.
TEST_F(PlacementEngineTest, AReleaseBadOnEveryHostNamesNoHost) {
  ASSERT_EQ(to_string(deploy_and_wait("v1").state), "succeeded");
  for (auto* a : {&agent_, &b_, &c_}) a->set_behaviour("v2", {.error_rate = 0.6});
  auto d = deploy_and_wait("v2");
  ASSERT_EQ(to_string(d.state), "rolled_back") << d.reason;
  EXPECT_EQ(d.reason.find("worst on agent"), std::string::npos) << d.reason;
}

}  // namespace
}  // namespace ferry
