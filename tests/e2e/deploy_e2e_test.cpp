// The whole product on loopback: `ferry server` with its local agent and router, the
// demo app as the service. A good canary goes to 100% and a bad one is rolled back by
// itself, under continuous load, without a failed connection; an agent killed with -9
// is restarted and re-adopts its instances while traffic keeps flowing.
#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const std::string kCanaryApp =
    demo_app({.instances = 2, .progress_deadline = "15s"}, R"(    strategy:
      canary:
        steps:
          - weight: 20
          - analysis: 3s
          - weight: 100
    analysis:
      interval: 500ms
      window: 3s
      min_requests: 10
      max_error_rate: 5%
      # These tests are about errors, kills and resumes. The latency test compares fresh
      # instances with warm ones on a loaded CI machine (sanitizer builds, 2 cores) and is
      # tested on its own in tests/analysis.
      mann_whitney: false
)");

TEST(DeployE2E, GoodCanaryPromotesAndBadCanaryRollsBackUnderLoad) {
  Cluster c("canary", kCanaryApp);
  c.start_server();
  c.release("v1");
  c.release("v2");
  c.release("v3", Json{{"DEMO_FAIL_RATE", "0.5"}});

  Json d1 = c.wait_final(c.deploy("v1"));
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();

  Load good;
  good.start(c.app_port());
  Json d2 = c.wait_final(c.deploy("v2"));
  EXPECT_TRUE(good.wait_more(50));  // and on v2 alone after it
  good.finish();
  EXPECT_EQ(d2.value("state", ""), "succeeded") << d2.dump(2);
  EXPECT_EQ(good.transport_errors, 0u) << (good.errors.empty() ? "" : good.errors[0]);
  EXPECT_EQ(good.status_count(502) + good.status_count(503) + good.status_count(500), 0u);
  EXPECT_GT(good.by_release["v2"], 0u);
  EXPECT_GT(good.requests, 100u);

  Load bad;
  bad.start(c.app_port());
  Json d3 = c.wait_final(c.deploy("v3"));
  EXPECT_TRUE(bad.wait_more(50));  // requests that were in flight at the rollback end
  {
    std::lock_guard lk(bad.mu);
    bad.by_release.clear();  // from here on only v2 may answer
  }
  EXPECT_TRUE(bad.wait_more(200));
  bad.finish();
  EXPECT_EQ(d3.value("state", ""), "rolled_back") << d3.dump(2);
  EXPECT_NE(d3.value("reason", "").find("error rate"), std::string::npos) << d3.value("reason", "");
  EXPECT_EQ(bad.transport_errors, 0u) << (bad.errors.empty() ? "" : bad.errors[0]);
  EXPECT_EQ(bad.status_count(502) + bad.status_count(503), 0u);
  EXPECT_EQ(bad.by_release.count("v3"), 0u);
  EXPECT_GT(bad.by_release["v2"], 0u);

  // The CLI shows the history; the audit log recorded the rollback.
  int rc = 0;
  const std::string hist = c.cli("history web --env dev", &rc);
  EXPECT_EQ(rc, 0) << hist;
  EXPECT_NE(hist.find("rolled_back"), std::string::npos) << hist;
  auto audit = c.api("GET", "/api/v1/audit");
  ASSERT_TRUE(audit.ok());
  bool rolled = false;
  for (const auto& a : (*audit)["entries"])
    rolled |= a.value("action", "") == "deployment.rollback";
  EXPECT_TRUE(rolled) << audit->dump(2);
}

TEST(DeployE2E, AgentKilledWithSigkillIsRestartedAndReadoptsInstances) {
  Cluster c("readopt", kCanaryApp);
  c.start_server();
  c.release("v1");
  Json d1 = c.wait_final(c.deploy("v1"));
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();
  auto before = c.api("GET", "/api/v1/apps/web/envs/dev/status");
  ASSERT_TRUE(before.ok());
  std::set<int> pids;
  for (const auto& i : (*before)["agents"][0]["instances"]) pids.insert(i.value("pid", 0));
  ASSERT_EQ(pids.size(), 2u) << before->dump(2);

  const int agent = c.agent_pid();
  ASSERT_GT(agent, 0) << "no agent pid for this cluster";
  ASSERT_EQ(kill(agent, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  // The router lives in the agent: it is down until the agent is back.
  double back_ms = -1;
  for (int i = 0; i < 500; ++i) {
    HttpClient h(Endpoint{"127.0.0.1", c.app_port()}, HttpClientOptions{500, 1 << 20});
    auto r = h.request("GET", "/");
    if (r.ok() && r->status == 200) {
      back_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed)
                    .count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(back_ms, 0) << "router did not come back";
  std::cout << "[ measure ] router back " << back_ms << " ms after kill -9 of the agent\n";
  // The router listens before the agent's API does: ask until the agent answers.
  auto after = c.api("GET", "/api/v1/apps/web/envs/dev/status");
  for (int i = 0; i < 500 && after.ok() && (*after)["agents"][0].contains("error"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = c.api("GET", "/api/v1/apps/web/envs/dev/status");
  }
  ASSERT_TRUE(after.ok());
  ASSERT_FALSE((*after)["agents"][0].contains("error")) << after->dump(2);
  std::set<int> pids_after;
  for (const auto& i : (*after)["agents"][0]["instances"]) pids_after.insert(i.value("pid", 0));
  EXPECT_EQ(pids, pids_after) << "instances were restarted instead of re-adopted";
  // Steady traffic afterwards has no errors.
  Load l;
  l.start(c.app_port(), 2, 5, 200);
  l.finish();
  EXPECT_EQ(l.transport_errors, 0u);
  EXPECT_EQ(l.status_count(200), l.requests);
}

TEST(DeployE2E, ApiRefusesMissingTokensAndViewerDeploys) {
  Cluster c("auth", kCanaryApp);
  c.start_server();
  auto r = c.api("GET", "/api/v1/whoami");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value("role", ""), "admin");
  Json body{{"name", "reader"}, {"role", "viewer"}};
  auto t = c.api("POST", "/api/v1/tokens", &body);
  ASSERT_TRUE(t.ok());
  const std::string viewer = t->value("token", "");
  int rc = 0;
  std::string out = c.cli("--token " + viewer + " deploy web v1 --env dev", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("needs deployer"), std::string::npos) << out;
  out = c.cli("--token '' apps", &rc);
  EXPECT_EQ(rc, 1);
  // The 403 is audited as its answer goes out; a 401 is logged, not audited.
  EXPECT_TRUE(testing::wait_until([&] {
    auto audit = c.api("GET", "/api/v1/audit");
    int denied = 0;
    if (audit.ok())
      for (const auto& a : (*audit)["entries"]) denied += a.value("action", "") == "api.denied";
    return denied >= 1;
  }));
}

}  // namespace
}  // namespace ferry::e2e

namespace ferry::e2e {
namespace {

TEST(DeployE2E, AutoDeployAndSecretRotationReplaceInstancesWithoutFailedRequests) {
  Cluster c("secrets", kCanaryApp, "  dev:\n    auto_deploy: true\n");
  c.start_server();
  // Creating the release deploys it to dev by itself.
  Json rel = c.release("v1");
  ASSERT_EQ(rel["auto_deployed"].size(), 1u) << rel.dump();
  const std::string id = rel["auto_deployed"][0].value("deployment_id", "");
  ASSERT_EQ(c.wait_final(id).value("state", ""), "succeeded") << c.log();
  HttpClient h(Endpoint{"127.0.0.1", c.app_port()});
  auto r = h.request("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("\"message\":\"hello\""), std::string::npos) << r->body;

  // A secret the app reads (DEMO_GREETING): the instances are replaced under load.
  Load load;
  load.start(c.app_port(), 2, 30, 20000);
  ASSERT_TRUE(load.wait_more(20));
  Json secret{{"value", "rotated-greeting-4417"}};
  auto put = c.api("PUT", "/api/v1/apps/web/envs/dev/secrets/DEMO_GREETING", &secret);
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_TRUE(put->value("instances_refreshed", false)) << put->dump();
  const bool seen = testing::wait_until(
      [&] {
        auto g = h.request("GET", "/");
        return g.ok() && g->body.find("rotated-greeting-4417") != std::string::npos;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  EXPECT_TRUE(load.wait_more(50));  // the old instances drain and stop under load
  load.finish();
  EXPECT_TRUE(seen) << "the new secret never reached the app";
  EXPECT_EQ(load.transport_errors, 0u) << (load.errors.empty() ? "" : load.errors[0]);
  EXPECT_EQ(load.status_count(502) + load.status_count(503), 0u);
  // The value is in no API answer and in no log of the server.
  for (const char* path : {"/api/v1/audit", "/api/v1/apps/web/envs/dev/secrets", "/api/v1/events",
                           "/api/v1/apps/web/envs/dev/status"}) {
    auto a = c.api("GET", path);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->dump().find("rotated-greeting-4417"), std::string::npos) << path;
  }
  EXPECT_EQ(c.log().find("rotated-greeting-4417"), std::string::npos);
}

}  // namespace
}  // namespace ferry::e2e

namespace ferry::e2e {
namespace {

// kill -9 of the server in the middle of a canary: the data plane keeps serving, and the
// restarted server resumes the deployment (rollback_policy: resume) or rolls it back
// (the default), with every event before the kill still there.
void server_killed_mid_canary(const std::string& policy, const std::string& want_state) {
  std::string app = std::string(kCanaryApp) + "    rollback_policy: " + policy + "\n";
  Cluster c("kill-" + policy, app);
  c.start_server();
  c.release("v1");
  c.release("v2");
  ASSERT_EQ(c.wait_final(c.deploy("v1")).value("state", ""), "succeeded") << c.log();
  Load load;
  load.start(c.app_port(), 2, 60, 20000);
  const std::string id = c.deploy("v2");
  // Wait until the canary's analysis step runs, then kill the server without warning.
  Json d;
  testing::wait_until([&] {
    d = *c.api("GET", "/api/v1/deployments/" + id);
    return d.value("current_step", -1) == 2 && d.value("step_state", "") == "running";
  });
  ASSERT_EQ(d.value("current_step", -1), 2) << d.dump(2);
  const size_t events_before = d["events"].size();
  c.stop_server(SIGKILL);
  // The routers keep serving with the last weights while no server runs.
  EXPECT_TRUE(load.wait_more(100));
  c.start_server();
  Json done = c.wait_final(id);
  EXPECT_TRUE(load.wait_more(50));
  load.finish();
  EXPECT_EQ(done.value("state", ""), want_state) << done.dump(2);
  EXPECT_GE(done["events"].size(), events_before + 2);
  for (size_t i = 0; i < events_before; ++i)
    EXPECT_EQ(done["events"][i].value("seq", 0), d["events"][i].value("seq", 0));
  EXPECT_EQ(load.transport_errors, 0u) << (load.errors.empty() ? "" : load.errors[0]);
  EXPECT_EQ(load.status_count(502) + load.status_count(503), 0u);
}

TEST(DeployE2E, ServerKilledMidCanaryResumesItWhenThePolicySaysResume) {
  server_killed_mid_canary("resume", "succeeded");
}

TEST(DeployE2E, ServerKilledMidCanaryRollsItBackByDefault) {
  server_killed_mid_canary("rollback", "rolled_back");
}

}  // namespace
}  // namespace ferry::e2e
