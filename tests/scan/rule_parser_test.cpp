#include "scan/rule_parser.h"

#include <gtest/gtest.h>

#include "scan/detector.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;

std::vector<Finding> run(const RuleSet& rules, std::string_view text,
                         std::string_view path = "a/b.txt", std::string_view commit = {}) {
  auto det = Detector::create(rules);
  EXPECT_TRUE(det.ok()) << det.status().to_string();
  auto scratch = (*det)->new_scratch();
  std::vector<Finding> out;
  EXPECT_TRUE((*det)->detect(text, Fragment{path, commit, nullptr}, **scratch, out).ok());
  return out;
}

RuleSet parse_ok(std::string_view toml) {
  auto r = parse_rules(toml, "rules.toml");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(*r) : RuleSet{};
}

std::string parse_error(std::string_view toml) {
  auto r = parse_rules(toml, "rules.toml");
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

constexpr std::string_view kRule = R"(
title = "t"
[[rules]]
id = "corp-key"
description = "Corp key"
regex = '''corp_([a-z0-9]{16})'''
secretGroup = 1
keywords = ["corp_"]
)";

TEST(RuleParser, ReadsAGitleaksStyleRule) {
  RuleSet rs = parse_ok(kRule);
  ASSERT_EQ(rs.rules.size(), 1u);
  EXPECT_EQ(rs.title, "t");
  EXPECT_EQ(rs.rules[0].id, "corp-key");
  EXPECT_EQ(rs.rules[0].secret_group, 1);
  EXPECT_EQ(rs.rules[0].keywords, std::vector<std::string>{"corp_"});
  auto fs = run(rs, "x corp_" + rnd("abcdef0123456789", 16) + " y\n");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].secret.size(), 16u);
}

TEST(RuleParser, KeywordsGateTheRule) {
  RuleSet rs = parse_ok(R"(
[[rules]]
id = "hex32"
regex = '''\b([0-9a-f]{32})\b'''
keywords = ["deploykey"]
)");
  const std::string hex = rnd("0123456789abcdef", 32);
  EXPECT_TRUE(run(rs, "id " + hex + "\n").empty());
  EXPECT_EQ(run(rs, "DeployKey " + hex + "\n").size(), 1u);
}

TEST(RuleParser, EntropyThreshold) {
  RuleSet rs = parse_ok(R"(
[[rules]]
id = "v"
regex = '''val=([A-Za-z0-9]{20})'''
entropy = 3.5
)");
  EXPECT_TRUE(run(rs, "val=abababababababababab\n").empty());
  EXPECT_EQ(run(rs, "val=" + rnd(kAlnum, 20) + "\n").size(), 1u);
}

TEST(RuleParser, PathRules) {
  RuleSet rs = parse_ok(R"(
[[rules]]
id = "keystore"
description = "Java key store"
path = '''\.jks$'''
[[rules]]
id = "in-env"
regex = '''SECRETVALUE'''
path = '''\.env$'''
)");
  auto fs = run(rs, "anything", "conf/server.jks");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].rule_id, "keystore");
  EXPECT_TRUE(run(rs, "SECRETVALUE\n", "conf/app.yaml").empty());
  EXPECT_EQ(run(rs, "SECRETVALUE\n", "conf/.env").size(), 1u);
}

TEST(RuleParser, UseDefaultMergesAndDisables) {
  RuleSet rs = parse_ok(std::string(kRule) + R"(
[extend]
useDefault = true
disabledRules = ["jwt"]
)");
  bool has_corp = false, has_jwt = false, has_github = false;
  for (const Rule& r : rs.rules) {
    has_corp |= r.id == "corp-key";
    has_jwt |= r.id == "jwt";
    has_github |= r.id == "github-pat";
  }
  EXPECT_TRUE(has_corp);
  EXPECT_FALSE(has_jwt);
  EXPECT_TRUE(has_github);
  EXPECT_EQ(rs.rules.size(), default_rules().rules.size());  // +1 corp, -1 jwt
}

TEST(RuleParser, ErrorsNameFileRuleAndField) {
  std::string e = parse_error(R"(
[[rules]]
id = "bad"
regex = '''(unclosed'''
)");
  EXPECT_NE(e.find("rules.toml:4"), std::string::npos) << e;
}

}  // namespace
}  // namespace ferry::scan

namespace ferry::scan {
namespace {

void expect_error(std::string_view toml, std::initializer_list<std::string_view> parts) {
  auto r = parse_rules(toml, "rules.toml");
  ASSERT_FALSE(r.ok()) << toml;
  for (std::string_view p : parts) {
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << r.status().message();
  }
}

TEST(RuleParser, ErrorMessages) {
  expect_error("[[rules]]\nid = \"bad\"\nregex = '''(unclosed'''\n",
               {"rules.toml:3", "rule 'bad'", "field 'regex'", "invalid regex"});
  expect_error("[[rules]]\nid = \"g\"\nregex = '''a(b)'''\nsecretGroup = 3\n",
               {"rule 'g'", "secretGroup", "only 1 groups"});
  expect_error("[[rules]]\nid = \"e\"\nregex = 'a'\nentropy = \"high\"\n", {"rule 'e'", "entropy"});
  expect_error("[[rules]]\nid = \"k\"\nregex = 'a'\nkeywords = \"x\"\n", {"keywords", "array"});
  expect_error("[[rules]]\ndescription = \"no id\"\nregex = 'a'\n", {"rules[0]", "field 'id'"});
  expect_error("[[rules]]\nid = \"n\"\n", {"rule 'n'", "needs a regex"});
  expect_error("[[rules]]\nid = \"a\"\nregex = 'a'\n[[rules.allowlists]]\nregexTarget = \"body\"\n",
               {"rule 'a'", "regexTarget", "'body'"});
  expect_error("[[rules]]\nid = \"a\"\nregex = 'a'\n[allowlist]\npaths = ['(']\n",
               {"[allowlist]", "field 'paths'"});
  expect_error("title = \"x\"\n", {"no rules"});
  expect_error("[[rules]\nid = 1\n", {"rules.toml:1"});  // TOML syntax error
  expect_error("[extend]\nuseDefault = \"yes\"\n", {"[extend]", "useDefault"});
  expect_error(
      "[[allowlists]]\ntargetRules = [\"nope\"]\nregexes = ['x']\n[[rules]]\nid='a'\nregex='a'\n",
      {"targetRules", "'nope'"});
}

TEST(RuleParser, RefusesHugeFiles) {
  std::string big(kMaxRuleFileBytes + 1, '#');
  auto r = parse_rules(big, "big.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("big.toml"), std::string::npos);
}

TEST(RuleParser, LoadRulesMissingFile) {
  auto r = load_rules("/nonexistent/rules.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/rules.toml"), std::string::npos);
}

}  // namespace
}  // namespace ferry::scan
