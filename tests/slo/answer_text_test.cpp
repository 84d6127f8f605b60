// `ferry slo`'s text of an SLO answer and `ferry history`'s spend column
// (slo/answer_text.h): the answer comes over the network, so nulls, wrong types and missing
// fields print "-" (or nothing) instead of ending the command, as a null once did.
#include "slo/answer_text.h"

#include <gtest/gtest.h>

namespace ferry::slo {
namespace {

Json good_answer() {
  return Json::parse(R"({
    "app": "web", "env": "production", "window_ms": 2592000000, "now_ms": 1,
    "budget_remaining": 0.5,
    "objectives": [
      {"objective": "availability", "target": 0.999, "requests": 10000, "bad": 5,
       "attainment": 0.9995, "budget_remaining": 0.5,
       "burn": {"5m": 0.5, "30m": 1.5, "1h": 15.0, "6h": 2.0},
       "alerts": {"page": true, "ticket": false}},
      {"objective": "latency", "threshold_ms": 250, "target": 0.99, "requests": 10000, "bad": 1,
       "attainment": 0.9999, "budget_remaining": 0.99, "burn": {"5m": 0}, "alerts": {}}
    ],
    "gate": {"open": false, "reason": "budget below 10%"},
    "deployments": [{"id": "d-1", "release": "v2", "state": "rolled_back",
                     "budget_spent": 0.031, "budget_spent_after": 0.002,
                     "after_complete": true}]
  })");
}

TEST(SloAnswerText, AWellFormedAnswerPrintsEveryFigure) {
  const std::string t = answer_text(good_answer());
  for (const char* want :
       {"SLO of web in production (window 720h)", "availability", "target 99.900%",
        "attained 99.950%", "budget left 50.000%", "1h 15.00x", "(10000 requests, 5 bad)",
        "ALERT page: burning >14.4x over 1h and 5m", "latency (under 250 ms)",
        "gate: closed: budget below 10%", "d-1", "3.100% + 0.200%"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  EXPECT_EQ(t.find("ALERT ticket"), std::string::npos) << t;
  EXPECT_EQ(t.find("hour not over"), std::string::npos) << t;
}

TEST(SloAnswerText, NullsAndWrongTypesPrintADashInsteadOfEndingTheCommand) {
  Json a = good_answer();
  auto& o = a["objectives"][0];
  o["attainment"] = nullptr;
  o["budget_remaining"] = "lots";
  o["target"] = Json::array({1});
  o["burn"]["1h"] = nullptr;
  o["burn"]["6h"] = "fast";
  o["requests"] = -3;
  o["bad"] = nullptr;
  o["alerts"] = {{"page", "yes"}, {"ticket", nullptr}};
  o["objective"] = 7;
  a["objectives"][1]["threshold_ms"] = nullptr;
  a["objectives"][1]["burn"] = nullptr;
  a["objectives"][1]["alerts"] = Json::array();
  a["objectives"].push_back(nullptr);
  a["objectives"].push_back("not an objective");
  a["window_ms"] = 1e300;
  a["app"] = nullptr;
  a["gate"] = {{"open", nullptr}, {"reason", 5}};
  a["deployments"][0]["budget_spent"] = nullptr;
  a["deployments"][0]["budget_spent_after"] = "0.1";
  a["deployments"][0]["id"] = nullptr;
  a["deployments"][0]["after_complete"] = "true";
  a["deployments"].push_back(42);
  std::string t;
  ASSERT_NO_THROW(t = answer_text(a));
  for (const char* want :
       {"SLO of - in production (window -)", "target -", "attained -", "budget left -", "1h -",
        "6h -", "(- requests, - bad)", "(under - ms)", "gate: open", "- + -", "(hour not over)"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  EXPECT_EQ(t.find("ALERT"), std::string::npos) << "an alert that is not true is not shown\n" << t;
}

TEST(SloAnswerText, AnythingButTheExpectedShapePrintsWithoutThrowing) {
  for (const Json& a : {Json(nullptr), Json(5), Json("text"), Json::array({1, 2}), Json::object(),
                        Json{{"objectives", "x"}, {"deployments", 3}, {"gate", "closed"}},
                        Json{{"objectives", {{{"burn", {{"5m", {{"x", 1}}}}}}}}}}) {
    std::string t;
    ASSERT_NO_THROW(t = answer_text(a)) << a.dump();
    EXPECT_NE(t.find("SLO of"), std::string::npos) << a.dump();
  }
}

TEST(SloSpendText, HistoryColumnSurvivesNullsAndSaysWhenThereIsNoSlo) {
  EXPECT_EQ(spend_text(Json{{"id", "d-1"}}), "-");
  EXPECT_EQ(spend_text(Json{{"slo_spend", nullptr}}), "-");
  EXPECT_EQ(spend_text(Json(nullptr)), "-");
  EXPECT_EQ(spend_text(Json{
                {"slo_spend", {{"during", 0.008}, {"after", 0.001}, {"after_complete", true}}}}),
            "SLO 0.80%+0.10%");
  EXPECT_EQ(spend_text(Json{{"slo_spend", {{"during", 0.008}, {"after", 0.001}}}}),
            "SLO 0.80%+0.10%…");
  std::string t;
  ASSERT_NO_THROW(t = spend_text(Json{{"slo_spend", {{"during", nullptr}, {"after", "x"}}}}));
  EXPECT_EQ(t, "SLO -+-…");
}

}  // namespace
}  // namespace ferry::slo
