// The SLO gate through the real control plane (a deployment waits with the reason shown;
// only an admin's SLO override, with a reason, opens it; audited) and the SLO routes
// against bad input and tokens that may not read them.
#include "server/server_fixture.h"
#include "slo/slo.h"
#include "wait_until.h"

namespace ferry::testing {
namespace {

class SloApiTest : public ServerFixture {
 protected:
  void SetUp() override {
    app_run_extra_ = "    slo: {availability: 99.9%, window: 7d}\n";
    start("  staging: {}\n  production:\n    slo_gate: {min_budget: 10%, max_burn: 2x}\n");
  }
  // Half of this minute's requests failed: far past every burn threshold.
  void burn_budget() {
    SloBucketRecord b;
    b.app = "web";
    b.env = "production";
    b.start_ms = slo::minute_of(to_unix_ms(cp_->clock().now()));
    b.requests = 100;
    b.errors = 50;
    ASSERT_TRUE(cp_->store().add_slo_counts({b}, {}).ok());
  }
};

TEST_F(SloApiTest, BurningBudgetHoldsADeploymentUntilAnAdminOverridesTheSloGate) {
  release("v1");
  burn_budget();
  Json d = ok_json(admin_, "POST", "/api/v1/deployments",
                   Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}});
  const std::string id = d["id"];
  d = wait_state(id, [](const Json& j) { return j.value("state", "") == "waiting"; });
  EXPECT_NE(d.value("reason", "").find("SLO gate"), std::string::npos) << d.dump();
  // A window override does not open the SLO gate; a bad gate name is refused.
  ok_json(admin_, "POST", "/api/v1/deployments/" + id + "/override",
          Json{{"reason", "window is fine today"}});
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments/" + id + "/override",
                 Json{{"reason", "let it through"}, {"gate", "everything"}})
                ->status,
            400);
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments/" + id + "/override",
                 Json{{"reason", "let it through"}, {"gate", 7}})
                ->status,
            400);
  const std::string dep = token("dave", Role::kDeployer);
  EXPECT_EQ(call(dep, "POST", "/api/v1/deployments/" + id + "/override",
                 Json{{"reason", "fix for the burn"}, {"gate", "slo"}})
                ->status,
            403);
  EXPECT_EQ(ok_json(admin_, "GET", "/api/v1/deployments/" + id).value("state", ""), "waiting");
  ok_json(admin_, "POST", "/api/v1/deployments/" + id + "/override",
          Json{{"reason", "this release fixes the burn"}, {"gate", "slo"}});
  d = wait_state(id, [](const Json& j) { return j.value("state", "") != "waiting"; });
  bool opened = false;
  for (const auto& e : d["events"]) opened |= e.value("type", "") == "gates_passed";
  EXPECT_TRUE(opened) << d.dump();
  // The audit entry may land just after the answer: waited for, with a bound.
  Json entries;
  const bool audited = wait_until([&] {
    entries = ok_json(admin_, "GET", "/api/v1/audit")["entries"];
    for (const auto& e : entries)
      if (e.value("action", "") == "gate.override" && e["details"].value("gate", "") == "slo")
        return true;
    return false;
  });
  EXPECT_TRUE(audited) << entries.dump(1);
}

TEST_F(SloApiTest, StatusShowsBudgetBurnAndGate) {
  burn_budget();
  Json s = ok_json(admin_, "GET", "/api/v1/slo/web/production?hours=2");
  ASSERT_EQ(s["objectives"].size(), 1u) << s.dump();
  EXPECT_EQ(s["objectives"][0].value("bad", 0), 50);
  EXPECT_LT(s.value("budget_remaining", 1.0), 0);
  EXPECT_GT(s["objectives"][0]["burn"].value("5m", 0.0), 14.4);
  EXPECT_TRUE(s["objectives"][0]["alerts"].value("page", false));
  EXPECT_FALSE(s["gate"].value("open", true));
  EXPECT_FALSE(s["chart"]["points"].empty());
  Json all = ok_json(admin_, "GET", "/api/v1/slo");
  EXPECT_EQ(all["slos"].size(), 2u) << all.dump();  // web in staging and production
  // /metrics carries the same figures, from the copy the API just read: its four SLO
  // gauges read the store no more (twice, within the collector's interval).
  const uint64_t reads = cp_->slo().bucket_reads();
  auto m = call(admin_, "GET", "/metrics");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(call(admin_, "GET", "/metrics").ok());
  EXPECT_EQ(cp_->slo().bucket_reads(), reads);
  EXPECT_NE(m->body.find("ferry_slo_burn_rate{app=\"web\",env=\"production\",objective="
                         "\"availability\",window=\"5m\"} 500"),
            std::string::npos)
      << m->body.substr(0, 4000);
}

TEST_F(SloApiTest, BadInputAndForeignEnvironmentsAreRefused) {
  for (const char* bad : {"0", "169", "abc", "-1", "1e3", "", "99999999999999999999"}) {
    auto r = call(admin_, "GET", std::string("/api/v1/slo/web/production?hours=") + bad);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << bad << ": " << r->body;
    EXPECT_NE(r->body.find("hours"), std::string::npos) << r->body;
  }
  EXPECT_EQ(call(admin_, "GET", "/api/v1/slo/nope/production")->status, 404);
  EXPECT_EQ(call(admin_, "GET", "/api/v1/slo/web/nowhere")->status, 404);
  EXPECT_EQ(call(admin_, "GET", "/api/v1/slo/web/..%2f..%2fetc")->status, 404);
  // A token scoped to staging may not read production's SLO, nor see it in the list.
  const std::string viewer = token("vera", Role::kViewer, {"staging"});
  EXPECT_EQ(call(viewer, "GET", "/api/v1/slo/web/production")->status, 403);
  Json mine = ok_json(viewer, "GET", "/api/v1/slo");
  ASSERT_EQ(mine["slos"].size(), 1u);
  EXPECT_EQ(mine["slos"][0].value("env", ""), "staging");
  // No token at all.
  EXPECT_EQ(call("", "GET", "/api/v1/slo/web/staging")->status, 401);
}

}  // namespace
}  // namespace ferry::testing
