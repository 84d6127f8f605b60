// The game-day API's refusals (POST /api/v1/chaos, docs/api.md "Chaos"): an environment
// without `chaos: allowed`, tokens below admin or scoped elsewhere, bad durations, shares
// and kinds, hostile input. Every refusal starts nothing and audits no experiment.
#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

class ChaosApi : public ServerFixture {
 protected:
  void SetUp() override { start("  staging:\n    chaos: allowed\n  production: {}\n"); }

  Json errors_body(const std::string& env = "staging") {
    return Json{
        {"app", "web"}, {"env", env}, {"kind", "errors"}, {"share", 0.1}, {"duration_ms", 60'000}};
  }
  // The answer's status and error message.
  std::pair<int, std::string> post(const std::string& tok, const Json& body) {
    auto r = call(tok, "POST", "/api/v1/chaos", body);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {0, ""};
    auto j = parse_json(r->body);
    std::string msg = j.ok() && j->contains("error") ? (*j)["error"].value("message", "") : r->body;
    return {r->status, msg};
  }
  void expect_nothing_started() {
    Json l = ok_json(admin_, "GET", "/api/v1/chaos");
    EXPECT_TRUE(l.value("experiments", Json::array()).empty()) << l.dump();
    Json a = ok_json(admin_, "GET", "/api/v1/audit?limit=5000");
    for (const auto& e : a.value("entries", Json::array()))
      EXPECT_FALSE(e.value("action", "").starts_with("chaos.")) << e.dump();
  }
};

TEST_F(ChaosApi, AnEnvironmentWithoutChaosAllowedIsRefused) {
  auto [status, msg] = post(admin_, errors_body("production"));
  EXPECT_EQ(status, 412);
  EXPECT_NE(msg.find("chaos: allowed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("production"), std::string::npos) << msg;
  expect_nothing_started();
}

TEST_F(ChaosApi, OnlyAnAdminOfTheEnvironmentMayStartOne) {
  for (auto [name, role, envs] : {std::tuple{"viewer", Role::kViewer, std::vector<std::string>{}},
                                  {"deployer", Role::kDeployer, {}},
                                  {"approver", Role::kApprover, {}},
                                  {"admin-of-production", Role::kAdmin, {"production"}}}) {
    auto [status, msg] = post(token(name, role, envs), errors_body());
    EXPECT_EQ(status, 403) << name << ": " << msg;
  }
  // Without a token at all.
  auto [status, msg] = post("", errors_body());
  EXPECT_EQ(status, 401) << msg;
  expect_nothing_started();
  // An admin of staging gets past the permission (and then finds no agent running web).
  auto [s2, m2] = post(token("admin-of-staging", Role::kAdmin, {"staging"}), errors_body());
  EXPECT_EQ(s2, 412) << m2;
  EXPECT_NE(m2.find("runs on no agent"), std::string::npos) << m2;
  expect_nothing_started();
}

TEST_F(ChaosApi, BadDurationsSharesAndKindsAreRefusedNamingTheField) {
  struct Case {
    const char* what;
    Json body;
    const char* names;
  };
  auto with = [&](const char* key, Json v) {
    Json b = errors_body();
    b[key] = std::move(v);
    return b;
  };
  Json latency{{"app", "web"}, {"env", "staging"}, {"kind", "latency"}, {"share", 0.1}};
  auto lat = [&](Json ms) {
    Json b = latency;
    b["latency_ms"] = std::move(ms);
    return b;
  };
  std::vector<Case> cases = {
      {"duration under a second", with("duration_ms", 500), "duration_ms"},
      {"duration over an hour", with("duration_ms", 3'600'001), "duration_ms"},
      {"negative duration", with("duration_ms", -1), "duration_ms"},
      {"fractional duration", with("duration_ms", 1500.5), "duration_ms"},
      {"duration as text", with("duration_ms", "2m"), "duration_ms"},
      {"huge duration", with("duration_ms", 1e308), "duration_ms"},
      {"zero share", with("share", 0), "share"},
      {"share above 1", with("share", 1.5), "share"},
      {"negative share", with("share", -0.1), "share"},
      {"share as text", with("share", "10%"), "share"},
      {"error status 200", with("error_status", 200), "error_status"},
      {"error status huge", with("error_status", 1e12), "error_status"},
      {"no latency", latency, "latency_ms"},
      {"latency over 30 s", lat(30'001), "latency_ms"},
      {"negative latency", lat(-200), "latency_ms"},
      {"unknown kind", with("kind", "nuke"), "kind"},
      {"kind as number", with("kind", 3), "kind"},
      {"no kind", Json{{"app", "web"}, {"env", "staging"}}, "kind"},
      {"no app", Json{{"env", "staging"}, {"kind", "errors"}, {"share", 0.1}}, "app"},
      {"app as object", with("app", Json{{"a", 1}}), "app"},
      {"instance too long", with("instance", std::string(300, 'i')), "instance"},
  };
  for (const auto& c : cases) {
    auto [status, msg] = post(admin_, c.body);
    EXPECT_EQ(status, 400) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.names), std::string::npos) << c.what << ": " << msg;
  }
  expect_nothing_started();
}

TEST_F(ChaosApi, HostileNamesAndBodiesChangeNothing) {
  // Unknown or path-like app and environment names: not found, echoed no longer than sent.
  for (const char* app : {"../../etc/passwd", "web\n", "<script>", "nope"}) {
    Json b = errors_body();
    b["app"] = app;
    auto [status, msg] = post(admin_, b);
    EXPECT_EQ(status, 404) << app << ": " << msg;
  }
  Json b = errors_body();
  b["app"] = std::string(5000, 'a');
  EXPECT_EQ(post(admin_, b).first, 400);
  for (const char* raw : {"[]", "\"errors\"", "{", "null", "{\"app\": \"web\", \"app\": 5}"}) {
    HttpClient c(Endpoint{"127.0.0.1", cp_->port()});
    c.set_header("Authorization", "Bearer " + admin_);
    auto x = c.request("POST", "/api/v1/chaos", raw);
    ASSERT_TRUE(x.ok());
    EXPECT_EQ(x->status, 400) << raw << ": " << x->body;
  }
  expect_nothing_started();
}

TEST_F(ChaosApi, UnknownExperimentsAreNotFoundAndReadsNeedAToken) {
  auto r = call(admin_, "GET", "/api/v1/chaos/chaos-nope");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  r = call(admin_, "POST", "/api/v1/chaos/chaos-nope/stop");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  r = call("", "GET", "/api/v1/chaos");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  Json l = ok_json(token("v", Role::kViewer), "GET", "/api/v1/chaos?running=true");
  EXPECT_TRUE(l.contains("experiments"));
}

}  // namespace
}  // namespace ferry::testing
