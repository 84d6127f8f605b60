// gitleaks configuration files as they are: every field of today's format (minVersion,
// [extend] useDefault/path/disabledRules, both allowlist forms, composite rules), unknown
// fields as warnings, and the limits an attacker's rule file runs into.
#include <gtest/gtest.h>

#include "scan/detector.h"
#include "scan/report.h"
#include "scan/rule_parser.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

std::vector<Finding> findings_in(const RuleSet& rules, std::string_view text,
                                 std::string_view path = "app/config.txt",
                                 std::string_view commit = {}) {
  auto det = Detector::create(rules);
  EXPECT_TRUE(det.ok()) << det.status().to_string();
  if (!det.ok()) return {};
  auto scratch = (*det)->new_scratch();
  std::vector<Finding> out;
  EXPECT_TRUE((*det)->detect(text, Fragment{path, commit, nullptr}, **scratch, out).ok());
  return out;
}

std::vector<std::string> ids(const std::vector<Finding>& fs) {
  std::vector<std::string> out;
  for (const auto& f : fs) out.push_back(f.rule_id);
  return out;
}

const Rule* find_rule(const RuleSet& rs, std::string_view id) {
  for (const Rule& r : rs.rules)
    if (r.id == id) return &r;
  return nullptr;
}

// Written in the layout of gitleaks' own default file (title, minVersion, the old
// [allowlist] table, then rules with [[rules.allowlists]]), with every field used once.
constexpr std::string_view kEveryField = R"toml(
# a gitleaks configuration, as gitleaks itself writes them
title = "company config"
description = "rules for our services"
minVersion = "v8.25.0"

[extend]
useDefault = true
disabledRules = ["generic-api-key", "generic-secret-assignment", "generic-config-secret", "generic-password"]

[allowlist]
description = "global allow lists"
paths = ['''(?:^|/)vendor/''']
regexes = ['''^EXAMPLE''']
stopwords = ["notasecret"]

[[allowlists]]
description = "fixtures for corp keys only"
targetRules = ["corp-key"]
condition = "AND"
paths = ['''(?:^|/)fixtures/''']
regexes = ['''corp_''']
regexTarget = "match"

[[rules]]
id = "corp-key"
description = "Corp key"
regex = '''corp_([a-z0-9]{24})'''
secretGroup = 1
entropy = 3.0
keywords = ["corp_"]
tags = ["key", "corp"]
[[rules.allowlists]]
description = "test lines"
regexTarget = "line"
regexes = ['''# test-only''']
[[rules.allowlists]]
condition = "OR"
commits = ["0123456789abcdef0123456789abcdef01234567"]
stopwords = ["sample"]

[[rules]]
id = "keystore"
description = "A committed key store"
path = '''\.p12$'''

[[rules]]
id = "db-password"
description = "A database password next to its host"
regex = '''db_password\s*=\s*"([^"]{8,})"'''
keywords = ["db_password"]
[[rules.required]]
id = "db-host"
withinLines = 3

[[rules]]
id = "db-host"
description = "A database host (only a part of db-password)"
regex = '''db_host\s*=\s*"([a-z0-9.-]+)"'''
keywords = ["db_host"]
skipReport = true
)toml";

TEST(GitleaksConfig, ReadsEveryFieldOfTodaysFormatWithoutWarnings) {
  auto rs = parse_rules(kEveryField, "gitleaks.toml");
  ASSERT_TRUE(rs.ok()) << rs.status().to_string();
  EXPECT_TRUE(rs->warnings.empty()) << rs->warnings.front();
  EXPECT_EQ(rs->title, "company config");
  EXPECT_EQ(rs->min_version, "v8.25.0");
  ASSERT_NE(find_rule(default_rules(), "generic-secret-assignment"), nullptr);
  EXPECT_EQ(find_rule(*rs, "generic-secret-assignment"), nullptr);  // disabled
  ASSERT_NE(find_rule(*rs, "github-pat"), nullptr);                 // from the defaults
  const Rule* corp = find_rule(*rs, "corp-key");
  ASSERT_NE(corp, nullptr);
  EXPECT_EQ(corp->tags, (std::vector<std::string>{"key", "corp"}));
  // Two of the rule's own allowlists plus the [[allowlists]] entry aimed at it.
  EXPECT_EQ(corp->allowlists.size(), 3u);
  const Rule* pw = find_rule(*rs, "db-password");
  ASSERT_NE(pw, nullptr);
  ASSERT_EQ(pw->required.size(), 1u);
  EXPECT_EQ(pw->required[0].id, "db-host");
  EXPECT_EQ(pw->required[0].within_lines, 3);
  EXPECT_EQ(pw->required[0].within_columns, -1);
  EXPECT_TRUE(find_rule(*rs, "db-host")->skip_report);

  const std::string key = "corp_" + rnd("abcdefghijklmnopqrstuvwxyz0123456789", 24);
  EXPECT_EQ(ids(findings_in(*rs, "token = " + key + "\n")), std::vector<std::string>{"corp-key"});
  // Each allowlist does its part.
  EXPECT_TRUE(findings_in(*rs, "token = " + key + " # test-only\n").empty());        // line target
  EXPECT_TRUE(findings_in(*rs, "token = " + key + "\n", "vendor/x.txt").empty());    // global path
  EXPECT_TRUE(findings_in(*rs, "token = " + key + "\n", "fixtures/k.txt").empty());  // AND: both
  EXPECT_EQ(findings_in(*rs, "token = " + key + "\n", "app/x.txt", "ffff").size(), 1u);
  EXPECT_TRUE(findings_in(*rs, "token = " + key + "\n", "app/x.txt",
                          "0123456789abcdef0123456789abcdef01234567")
                  .empty());  // allowed commit
  // The path-only rule reports the file.
  EXPECT_EQ(ids(findings_in(*rs, "binary", "certs/server.p12")),
            std::vector<std::string>{"keystore"});
}

TEST(GitleaksConfig, CompositeRulesReportOnlyWithTheirRequiredPartNearby) {
  auto rs = parse_rules(kEveryField, "gitleaks.toml");
  ASSERT_TRUE(rs.ok()) << rs.status().to_string();
  const std::string pw = "db_password = \"" + rnd(kAlnum, 16) + "\"\n";
  // Alone, the password is not reported; the host alone never is (skipReport).
  EXPECT_TRUE(findings_in(*rs, pw).empty());
  EXPECT_TRUE(findings_in(*rs, "db_host = \"db.internal\"\n").empty());
  // Together within three lines: the password is reported, the host part is not.
  EXPECT_EQ(ids(findings_in(*rs, "db_host = \"db.internal\"\nport = 5432\n" + pw)),
            std::vector<std::string>{"db-password"});
  // Too far apart.
  EXPECT_TRUE(findings_in(*rs, "db_host = \"db.internal\"\n\n\n\n\n\n" + pw).empty());
}

TEST(GitleaksConfig, WithinColumnsAndAReportedAuxiliaryRule) {
  auto rs = parse_rules(R"(
[[rules]]
id = "user"
regex = '''user=(\w{4,})'''
[[rules]]
id = "pass"
regex = '''pass=(\w{8,})'''
[[rules.required]]
id = "user"
withinColumns = 20
)",
                        "c.toml");
  ASSERT_TRUE(rs.ok()) << rs.status().to_string();
  // The auxiliary rule has no skipReport: it is reported on its own too.
  EXPECT_EQ(ids(findings_in(*rs, "user=alice pass=" + rnd(kAlnum, 12) + "\n")),
            (std::vector<std::string>{"user", "pass"}));
  EXPECT_EQ(
      ids(findings_in(*rs, "user=alice" + std::string(40, ' ') + "pass=" + rnd(kAlnum, 12) + "\n")),
      std::vector<std::string>{"user"});
}

TEST(GitleaksConfig, ExtendsAnotherFileByPathAndAdjustsItsRules) {
  TempDir dir;
  dir.write("base/base.toml", R"(
title = "base"
[[rules]]
id = "corp-key"
description = "Corp key"
regex = '''corp_([a-z0-9]{24})'''
keywords = ["corp_"]
[[rules]]
id = "old-rule"
regex = '''old_([a-z]{10})'''
)");
  const std::string child = dir.write("child.toml", R"(
[extend]
path = "base/base.toml"
disabledRules = ["old-rule"]
[[rules]]
id = "corp-key"
entropy = 3.5
keywords = ["corpkey"]
[[rules.allowlists]]
stopwords = ["example"]
)");
  auto rs = load_rules(child);
  ASSERT_TRUE(rs.ok()) << rs.status().to_string();
  EXPECT_EQ(find_rule(*rs, "old-rule"), nullptr);
  const Rule* corp = find_rule(*rs, "corp-key");
  ASSERT_NE(corp, nullptr);
  // The base's regex and description stay; the child's settings are added.
  EXPECT_EQ(corp->description, "Corp key");
  EXPECT_NE(corp->re, nullptr);
  EXPECT_DOUBLE_EQ(corp->entropy, 3.5);
  EXPECT_EQ(corp->keywords, (std::vector<std::string>{"corp_", "corpkey"}));
  EXPECT_EQ(corp->allowlists.size(), 1u);
  EXPECT_EQ(
      findings_in(*rs, "k corp_" + rnd("abcdefghijklmnopqrstuvwxyz0123456789", 24) + "\n").size(),
      1u);
}

TEST(GitleaksConfig, ExtendChainsAreBoundedAndCyclesRefused) {
  TempDir dir;
  dir.write("a.toml", "[extend]\npath = \"b.toml\"\n[[rules]]\nid = \"a\"\nregex = 'a'\n");
  dir.write("b.toml", "[extend]\npath = \"a.toml\"\n[[rules]]\nid = \"b\"\nregex = 'b'\n");
  auto cycle = load_rules((dir.path() / "a.toml").string());
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.status().message().find("deep"), std::string::npos) << cycle.status().message();

  dir.write("one.toml", "[extend]\npath = \"two.toml\"\n[[rules]]\nid = \"1\"\nregex = '1'\n");
  dir.write("two.toml", "[extend]\npath = \"three.toml\"\n[[rules]]\nid = \"2\"\nregex = '2'\n");
  dir.write("three.toml", "[[rules]]\nid = \"3\"\nregex = '3'\n");
  auto chain = load_rules((dir.path() / "one.toml").string());
  ASSERT_TRUE(chain.ok()) << chain.status().to_string();
  EXPECT_EQ(chain->rules.size(), 3u);

  auto missing = parse_rules("[extend]\npath = \"/nonexistent/base.toml\"\n", "x.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/base.toml"), std::string::npos);
}

TEST(GitleaksConfig, UnknownFieldsAreWarningsNamingThemExceptInExtend) {
  auto rs = parse_rules(R"(
title = "t"
futureSetting = 1
[[rules]]
id = "a"
regex = '''alpha_(\w{8})'''
regexx = "typo"
[[rules.allowlists]]
regexes = ['''x''']
someNewList = ["y"]
)",
                        "rules.toml");
  ASSERT_TRUE(rs.ok()) << rs.status().to_string();
  ASSERT_EQ(rs->warnings.size(), 3u);
  EXPECT_NE(rs->warnings[0].find("rules.toml:3"), std::string::npos) << rs->warnings[0];
  EXPECT_NE(rs->warnings[0].find("'futureSetting'"), std::string::npos) << rs->warnings[0];
  EXPECT_NE(rs->warnings[1].find("rule 'a'"), std::string::npos) << rs->warnings[1];
  EXPECT_NE(rs->warnings[1].find("'regexx'"), std::string::npos) << rs->warnings[1];
  EXPECT_NE(rs->warnings[2].find("'someNewList'"), std::string::npos) << rs->warnings[2];
  // The rule still runs: ignoring the fields reports more, never less.
  EXPECT_EQ(findings_in(*rs, "alpha_" + rnd(kAlnum, 8) + "\n").size(), 1u);

  // [extend] decides which rules run: an unknown field there is an error.
  auto ext = parse_rules("[extend]\nuseDefault = true\nincludeRules = [\"x\"]\n", "rules.toml");
  ASSERT_FALSE(ext.ok());
  EXPECT_NE(ext.status().message().find("includeRules"), std::string::npos);

  // Warnings reach the JSON report.
  ScanReport report;
  report.warnings = rs->warnings;
  EXPECT_EQ(report_json(report, true)["warnings"].size(), 3u);
}

TEST(GitleaksConfig, RefusesCompositeRulesThatCannotWork) {
  auto missing = parse_rules(
      "[[rules]]\nid = \"p\"\nregex = 'p'\n[[rules.required]]\nid = \"nope\"\n", "r.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no rule with id 'nope'"), std::string::npos);
  auto self =
      parse_rules("[[rules]]\nid = \"p\"\nregex = 'p'\n[[rules.required]]\nid = \"p\"\n", "r.toml");
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.status().message().find("itself"), std::string::npos);
  auto negative = parse_rules(
      "[[rules]]\nid = \"q\"\nregex = 'q'\n[[rules]]\nid = \"p\"\nregex = 'p'\n"
      "[[rules.required]]\nid = \"q\"\nwithinLines = -1\n",
      "r.toml");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("withinLines"), std::string::npos);
  // A required rule that [extend] disabled is gone, and that is said.
  auto disabled = parse_rules(
      "[extend]\nuseDefault = true\ndisabledRules = [\"jwt\"]\n"
      "[[rules]]\nid = \"p\"\nregex = 'p'\n[[rules.required]]\nid = \"jwt\"\n",
      "r.toml");
  ASSERT_FALSE(disabled.ok());
  EXPECT_NE(disabled.status().message().find("'jwt'"), std::string::npos);
  std::string many = "[[rules]]\nid = \"q\"\nregex = 'q'\n[[rules]]\nid = \"p\"\nregex = 'p'\n";
  for (int i = 0; i < 65; ++i) many += "[[rules.required]]\nid = \"q\"\n";
  EXPECT_FALSE(parse_rules(many, "r.toml").ok());
  auto both = parse_rules("[extend]\nuseDefault = true\npath = \"x.toml\"\n", "r.toml");
  EXPECT_FALSE(both.ok());
  auto disabled_alone = parse_rules(
      "[extend]\ndisabledRules = [\"jwt\"]\n[[rules]]\nid = \"p\"\nregex = 'p'\n", "r.toml");
  EXPECT_FALSE(disabled_alone.ok());
}

TEST(GitleaksConfig, ARuleDefinedTwiceKeepsTheLaterOneAndSaysSo) {
  auto rs = parse_rules(
      "[[rules]]\nid = \"a\"\nregex = '''first_(\\w{8})'''\n"
      "[[rules]]\nid = \"a\"\nregex = '''second_(\\w{8})'''\n",
      "r.toml");
  ASSERT_TRUE(rs.ok()) << rs.status().to_string();
  ASSERT_EQ(rs->rules.size(), 1u);
  ASSERT_EQ(rs->warnings.size(), 1u);
  EXPECT_NE(rs->warnings[0].find("defined twice"), std::string::npos);
  EXPECT_TRUE(findings_in(*rs, "first_" + rnd(kAlnum, 8) + "\n").empty());
  EXPECT_EQ(findings_in(*rs, "second_" + rnd(kAlnum, 8) + "\n").size(), 1u);
}

}  // namespace
}  // namespace ferry::scan
