// The SLO budget guard end to end (docs/slo.md, max_budget_spend): a real `ferry server`
// with its local agent and router, the demo app as the service. A canary whose own
// analysis passes (its 10% of failed requests are under max_error_rate 50%) still spends
// far more than 2% of the availability SLO's error budget, so the runner rolls it back on
// the guard's word, under load; the budget it spent is attributed to it.
#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

// Where a JSON value holds a null ("" when none): every figure of an SLO answer is a number.
std::string null_at(const Json& j, const std::string& path = "") {
  if (j.is_null()) return path.empty() ? "(root)" : path;
  if (j.is_object() || j.is_array())
    for (const auto& [k, v] : j.items())
      if (std::string at = null_at(v, path + "/" + k); !at.empty()) return at;
  return "";
}

const std::string kSloApp = demo_app({.instances = 1, .progress_deadline = "15s"}, R"(    strategy:
      canary:
        steps:
          - weight: 50
          - pause: 5m
          - weight: 100
    analysis:
      interval: 500ms
      window: 3s
      min_requests: 10
      max_error_rate: 50%
      mann_whitney: false
      sequential: false
    slo:
      availability: 99.9%
      window: 1h
)");

TEST(SloE2E, ACanaryThatSpendsTheErrorBudgetIsRolledBackByTheRunner) {
  Cluster c("slo", kSloApp, "  dev:\n    slo_gate: {max_budget_spend: 2%}\n");
  c.start_server();
  c.release("v1");
  c.release("v2", Json{{"DEMO_FAIL_RATE", "0.1"}});
  Json d1 = c.wait_final(c.deploy("v1"));
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();

  Load load;
  load.start(c.app_port(), 2, 120, 100000);
  ASSERT_TRUE(load.wait_more(200));  // v1's good requests in the SLO window first
  const std::string id = c.deploy("v2");
  // The collector reads the routers every 10 s; the five-minute pause would hold the
  // canary at 50% far longer than that.
  Json d2 = c.wait_final(id, 90);
  EXPECT_TRUE(load.wait_more(100));
  {
    std::lock_guard lk(load.mu);
    load.by_release.clear();  // from here on only v1 may answer
  }
  EXPECT_TRUE(load.wait_more(100));
  load.finish();
  ASSERT_EQ(d2.value("state", ""), "rolled_back") << d2.dump(2) << c.log();
  const std::string reason = d2.value("reason", "");
  EXPECT_NE(reason.find("more than max_budget_spend 2%"), std::string::npos) << reason;
  EXPECT_NE(reason.find("since its traffic started"), std::string::npos) << reason;
  // The canary's own analysis never failed: the guard decided.
  bool analysis_failed = false;
  for (const auto& e : d2["events"])
    analysis_failed |=
        e.value("type", "") == "analysis" && e["data"].value("verdict", "") == "fail";
  EXPECT_FALSE(analysis_failed) << d2.dump(2);
  EXPECT_EQ(load.transport_errors, 0u) << (load.errors.empty() ? "" : load.errors[0]);
  EXPECT_EQ(load.by_release.count("v2"), 0u);
  EXPECT_GT(load.by_release["v1"], 0u);

  // The SLO shows the spend, attributed to the canary.
  auto slo = c.api("GET", "/api/v1/slo/web/dev");
  ASSERT_TRUE(slo.ok()) << slo.status().message();
  EXPECT_LT(slo->value("budget_remaining", 1.0), 1.0) << slo->dump(2);
  double spent = 0;
  for (const auto& d : (*slo)["deployments"])
    if (d.value("id", "") == id) spent = d.value("budget_spent", 0.0);
  EXPECT_GT(spent, 0.02) << slo->dump(2);
  EXPECT_EQ(null_at(*slo), "") << slo->dump(2);
  auto list = c.api("GET", "/api/v1/slo");
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(null_at(*list), "") << list->dump(2);
  // And `ferry slo` prints it (it once died on a figure the answer sent as null).
  int rc = -1;
  const std::string out = c.cli("slo web --env dev", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("SLO of web in dev"), std::string::npos) << out;
  EXPECT_NE(out.find(id), std::string::npos) << out;
}

}  // namespace
}  // namespace ferry::e2e
