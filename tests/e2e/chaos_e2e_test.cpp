// Game days end to end (`ferry chaos`, docs/runbook.md "Game days"): a real server, its
// local agent and router, the demo app. An error experiment is seen by clients and in the
// report, then ends by itself; a killed instance is restarted by the agent; faults end on
// the agent by themselves when the server is killed mid-experiment, and the restarted
// server ends, audits and reports the experiment.
#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const std::string kChaosApp =
    demo_app({.instances = 2, .stop_grace = "2s"}, R"(    strategy: immediate
)");

const char* kChaosEnvs = "  dev:\n    chaos: allowed\n  prod: {}\n";

std::vector<std::string> audit_actions(Cluster& c) {
  std::vector<std::string> out;
  auto a = c.api("GET", "/api/v1/audit?limit=5000");
  if (a.ok())
    for (const auto& e : a->value("entries", Json::array())) out.push_back(e.value("action", ""));
  return out;
}

bool chaos_has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void deploy_v1(Cluster& c) {
  c.release("v1");
  Json d = c.wait_final(c.deploy("v1"));
  ASSERT_EQ(d.value("state", ""), "succeeded") << d.dump();
}

TEST(ChaosE2E, ErrorExperimentIsSeenByClientsAndInTheReportThenEndsByItself) {
  Cluster c("chaos-errors", kChaosApp, kChaosEnvs);
  c.start_server();
  deploy_v1(c);
  Load load;
  load.start(c.app_port(), 2, 120, 100'000);
  ASSERT_TRUE(load.wait_more(20));
  EXPECT_EQ(load.status_count(503), 0u);

  // Refused where the environment does not allow it, with nothing started.
  int rc = 0;
  std::string out = c.cli("chaos web --env prod --errors 20% --for 3s", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("chaos: allowed"), std::string::npos) << out;

  // 20% errors for 4 s, waited for: the CLI prints the report as JSON at the end.
  out = c.cli("--json chaos web --env dev --errors 20% --for 4s --wait", &rc);
  ASSERT_EQ(rc, 0) << out << c.log();
  auto e = parse_json(out);
  ASSERT_TRUE(e.ok()) << out;
  EXPECT_EQ(e->value("state", ""), "ended") << out;
  EXPECT_EQ(e->value("kind", ""), "errors");
  const Json saw = (*e)["report"]["clients_saw"];
  const uint64_t injected = saw.value("injected_errors", uint64_t{0});
  EXPECT_GT(injected, 0u) << out;
  EXPECT_GE(saw.value("errors_5xx", uint64_t{0}), injected);
  EXPECT_GT(saw.value("requests", uint64_t{0}), injected);
  // Roughly a fifth of the requests (a wide band: a few hundred requests at most).
  EXPECT_GT(saw.value("error_rate", 0.0), 0.05) << out;
  EXPECT_LT(saw.value("error_rate", 0.0), 0.45) << out;
  EXPECT_EQ((*e)["report"]["ferry_did"].value("instance_restarts", -1), 0) << out;
  // The clients saw them too.
  const uint64_t seen_503 = load.status_count(503);
  EXPECT_GT(seen_503, 0u);

  // Ended by itself: no more injected errors afterwards.
  ASSERT_TRUE(load.wait_more(100));
  EXPECT_EQ(load.status_count(503), seen_503);
  load.finish();
  EXPECT_EQ(load.transport_errors, 0u);

  const auto actions = audit_actions(c);
  EXPECT_TRUE(chaos_has(actions, "chaos.start"));
  EXPECT_TRUE(chaos_has(actions, "chaos.end"));
  auto list = c.api("GET", "/api/v1/chaos?app=web&env=dev&running=true");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->value("experiments", Json::array()).empty());
}

TEST(ChaosE2E, KillInstanceIsRestartedByTheAgentAndReported) {
  Cluster c("chaos-kill", kChaosApp, kChaosEnvs);
  c.start_server();
  deploy_v1(c);
  Load load;
  load.start(c.app_port(), 2, 120, 100'000);
  ASSERT_TRUE(load.wait_more(20));
  int rc = 0;
  std::string out = c.cli("--json chaos web --env dev --kill-instance --for 15s", &rc);
  ASSERT_EQ(rc, 0) << out;
  auto started = parse_json(out);
  ASSERT_TRUE(started.ok()) << out;
  const std::string killed = started->value("killed_instance", "");
  ASSERT_FALSE(killed.empty()) << out;
  EXPECT_EQ(started->value("killed_on", ""), "local");
  const std::string id = started->value("id", "");
  // A second experiment on the same app and environment is refused while this one runs.
  out = c.cli("chaos web --env dev --errors 5%", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("is running"), std::string::npos) << out;

  // The supervisor restarts it as after a crash: ready again with a restart counted.
  Json inst;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto s = c.api("GET", "/api/v1/apps/web/envs/dev/status");
        if (!s.ok()) return false;
        for (const auto& a : s->value("agents", Json::array()))
          for (const auto& i : a.value("instances", Json::array()))
            if (i.value("id", "") == killed) inst = i;
        return inst.value("restarts", 0) >= 1 && inst.value("state", "") == "ready";
      },
      std::chrono::seconds(60)))
      << inst.dump();
  Json e;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto r = c.api("GET", "/api/v1/chaos/" + id);
        if (!r.ok()) return false;
        e = *r;
        return e.value("state", "") == "ended";
      },
      std::chrono::seconds(60)))
      << e.dump();
  const Json did = e["report"]["ferry_did"];
  EXPECT_EQ(did["killed"].value("instance", ""), killed);
  EXPECT_GE(did.value("instance_restarts", 0), 1) << e.dump();
  EXPECT_GT(e["report"]["clients_saw"].value("requests", uint64_t{0}), 0u);
  load.finish();
  // --report prints the last experiment in words.
  out = c.cli("chaos web --env dev --report", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("killed instance " + killed), std::string::npos) << out;
  EXPECT_NE(out.find("instance restarts: "), std::string::npos) << out;
  EXPECT_TRUE(chaos_has(audit_actions(c), "chaos.kill"));
}

TEST(ChaosE2E, FaultsEndOnTheAgentWhenTheServerIsKilledAndTheRestartedServerReportsIt) {
  Cluster c("chaos-restart", kChaosApp, kChaosEnvs);
  c.start_server();
  deploy_v1(c);
  int rc = 0;
  std::string out = c.cli("--json chaos web --env dev --errors 100% --for 10s", &rc);
  ASSERT_EQ(rc, 0) << out;
  auto started = parse_json(out);
  ASSERT_TRUE(started.ok()) << out;
  const std::string id = started->value("id", "");
  c.stop_server(SIGKILL);
  // The agent and its router outlive the server: every request is answered 503 …
  HttpClient app(Endpoint{"127.0.0.1", c.app_port()}, HttpClientOptions{5000, 1 << 20});
  auto r = app.request("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  // … until the faults end by themselves, with no server to tell the agent.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto x = app.request("GET", "/");
        return x.ok() && x->status == 200;
      },
      std::chrono::seconds(30)));
  // The restarted server knows the experiment from DATA_DIR/chaos.json: it ends it, audits
  // the end and reports the injected errors the agent counted.
  c.start_server();
  Json e;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto g = c.api("GET", "/api/v1/chaos/" + id);
        if (!g.ok()) return false;
        e = *g;
        return e.value("state", "") == "ended";
      },
      std::chrono::seconds(30)))
      << e.dump();
  EXPECT_GE(e["report"]["clients_saw"].value("injected_errors", uint64_t{0}), 1u) << e.dump();
  EXPECT_TRUE(chaos_has(audit_actions(c), "chaos.end"));
}

TEST(ChaosE2E, StopEndsTheFaultsAtOnce) {
  Cluster c("chaos-stop", kChaosApp, kChaosEnvs);
  c.start_server();
  deploy_v1(c);
  int rc = 0;
  std::string out = c.cli("chaos web --env dev --errors 100% --for 10m", &rc);
  ASSERT_EQ(rc, 0) << out;
  HttpClient app(Endpoint{"127.0.0.1", c.app_port()}, HttpClientOptions{5000, 1 << 20});
  auto r = app.request("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  out = c.cli("chaos web --env dev --stop", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("(stopped)"), std::string::npos) << out;
  for (int i = 0; i < 20; ++i) {
    auto x = app.request("GET", "/");
    ASSERT_TRUE(x.ok());
    EXPECT_EQ(x->status, 200);
  }
  EXPECT_TRUE(chaos_has(audit_actions(c), "chaos.abort"));
}

}  // namespace
}  // namespace ferry::e2e
