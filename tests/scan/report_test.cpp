#include "scan/report.h"

#include <gtest/gtest.h>

#include "scan/rule_parser.h"
#include "scan/scanner.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

ScanReport sample(std::string& secret) {
  TempDir d;
  secret = std::string("gl") + "pat-" + rnd(kAlnum, 20, 3);
  d.write("deploy/ci.yml", "env:\n  GITLAB_TOKEN: " + secret + "\n");
  auto r = scan_path(d.str(), {});
  EXPECT_TRUE(r.ok());
  return std::move(*r);
}

TEST(Report, SarifShape) {
  std::string secret;
  ScanReport r = sample(secret);
  ASSERT_EQ(r.findings.size(), 1u);
  Json s = report_sarif(r, default_rules(), true);
  EXPECT_EQ(s["version"], "2.1.0");
  EXPECT_TRUE(s["$schema"].get<std::string>().find("sarif-2.1.0") != std::string::npos);
  ASSERT_EQ(s["runs"].size(), 1u);
  const Json& run = s["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["name"], "ferry-scan");
  const Json& rules = run["tool"]["driver"]["rules"];
  EXPECT_EQ(rules.size(), default_rules().rules.size());
  ASSERT_EQ(run["results"].size(), 1u);
  const Json& res = run["results"][0];
  EXPECT_EQ(res["ruleId"], "gitlab-pat");
  EXPECT_EQ(rules[res["ruleIndex"].get<size_t>()]["id"], "gitlab-pat");
  EXPECT_EQ(res["level"], "error");
  EXPECT_TRUE(res["message"]["text"].is_string());
  const Json& loc = res["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "deploy/ci.yml");
  EXPECT_EQ(loc["region"]["startLine"], 2);
  EXPECT_EQ(loc["region"]["startColumn"], 17);
  EXPECT_EQ(loc["region"]["endColumn"], 17 + static_cast<int>(secret.size()));
  EXPECT_EQ(res["partialFingerprints"]["secretFingerprint/v1"], r.findings[0].fingerprint);
  EXPECT_EQ(s.dump().find(secret), std::string::npos) << "secret leaked into SARIF";
}

TEST(Report, RedactionByDefault) {
  std::string secret;
  ScanReport r = sample(secret);
  for (const std::string& out : {report_text(r, true), report_json(r, true).dump()}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << out;
    EXPECT_NE(out.find("****"), std::string::npos);
  }
  EXPECT_NE(report_text(r, false).find(secret), std::string::npos);
  EXPECT_NE(report_json(r, false).dump().find(secret), std::string::npos);
  EXPECT_NE(report_sarif(r, default_rules(), false).dump().find(secret), std::string::npos);
}

TEST(Report, JsonFields) {
  std::string secret;
  ScanReport r = sample(secret);
  Json j = report_json(r, true);
  ASSERT_EQ(j["findings"].size(), 1u);
  const Json& f = j["findings"][0];
  for (const char* k : {"rule_id", "file", "line", "column", "secret", "match", "fingerprint"}) {
    EXPECT_TRUE(f.contains(k)) << k;
  }
  EXPECT_EQ(j["stats"]["files_scanned"], 1);
}

TEST(Report, RedactKeepsAShortPrefix) {
  EXPECT_EQ(redact("abc"), "****");
  EXPECT_EQ(redact("0123456789"), "01****");
  EXPECT_EQ(redact(std::string(40, 'k')), "kkkk****");
}

}  // namespace
}  // namespace ferry::scan
