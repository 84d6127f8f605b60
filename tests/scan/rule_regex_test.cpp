// The rules' RE2 programs: the built-in rules' regexes are compiled by the detector on first
// use (parse_rules_deferred), shared by the scan's threads, and copied by a thread only for
// a rule it confirms often. None of that may change what is found.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include <algorithm>
#include <set>
#include <thread>

#include "scan/detector.h"
#include "scan/rule_parser.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;

// The built-in rules are parsed without compiling their regexes; the strict parse of the same
// text (what a rule file gets) must accept every one of them, with its secretGroup in range.
TEST(RuleRegex, EveryBuiltInRegexCompilesAndHasItsSecretGroup) {
  for (const Rule& r : default_rules().rules) {
    EXPECT_EQ(r.re, nullptr) << r.id << ": compiled at start-up, not on first use";
  }
  auto strict = parse_rules(default_rules_toml(), "<default rules>");
  ASSERT_TRUE(strict.ok()) << strict.status().to_string();
  ASSERT_EQ(strict->rules.size(), default_rules().rules.size());
  size_t with_regex = 0;
  for (const Rule& r : strict->rules) {
    if (r.regex.empty()) continue;
    ++with_regex;
    ASSERT_NE(r.re, nullptr) << r.id;
    EXPECT_TRUE(r.re->ok()) << r.id;
    EXPECT_LE(r.secret_group, r.re->NumberOfCapturingGroups()) << r.id;
  }
  EXPECT_GE(with_regex, 30u);
}

// 200 tokens two lines apart: 200 separate windows for one rule, so each thread switches from
// the shared program to its own copy part-way through the buffer. Two threads start at once on
// a fresh detector (both race to compile the rule's regex first). Every token is found by
// both, exactly as by a detector whose rules were compiled at parse time.
TEST(RuleRegex, ThreadsCompilingOnFirstUseAndCopyingMidBufferFindEverything) {
  std::string text;
  std::set<std::string> planted;
  for (unsigned i = 0; i < 200; ++i) {
    const std::string token = "ghp_" + rnd(kAlnum, 36, i + 1);
    planted.insert(token);
    text += "filler line " + std::to_string(i) + "\nmore filler\ntoken: " + token + "\n";
  }
  auto lazy = Detector::create(default_rules());
  ASSERT_TRUE(lazy.ok()) << lazy.status().to_string();
  auto strict_rules = parse_rules(default_rules_toml(), "<default rules>");
  ASSERT_TRUE(strict_rules.ok());
  auto strict = Detector::create(std::move(*strict_rules));
  ASSERT_TRUE(strict.ok());

  auto run = [&](const Detector& d, bool own_regexes, std::set<std::string>& secrets) {
    auto scratch = d.new_scratch(own_regexes);
    ASSERT_TRUE(scratch.ok());
    for (int round = 0; round < 2; ++round) {  // the second round runs on the thread's copy
      std::vector<Finding> out;
      ASSERT_TRUE(d.detect(text, Fragment{"app/tokens.txt", {}, nullptr}, **scratch, out).ok());
      for (const Finding& f : out) {
        if (f.rule_id == "github-pat") secrets.insert(f.secret);
      }
      EXPECT_EQ(std::count_if(out.begin(), out.end(),
                              [](const Finding& f) { return f.rule_id == "github-pat"; }),
                200);
    }
  };
  std::set<std::string> a, b, c;
  std::thread ta([&] { run(**lazy, true, a); });
  std::thread tb([&] { run(**lazy, false, b); });
  ta.join();
  tb.join();
  run(**strict, true, c);
  EXPECT_EQ(a, planted);
  EXPECT_EQ(b, planted);
  EXPECT_EQ(c, planted);
}

// A rule file may set secretGroup on a built-in rule it extends without giving a regex (so it
// is not checked against the regex's groups at load): a group the regex does not have is
// treated as unset, never read past the match's groups.
TEST(RuleRegex, ASecretGroupBeyondAnExtendedRulesGroupsReadsNoFurther) {
  auto rules =
      parse_rules("[extend]\nuseDefault = true\n[[rules]]\nid = \"github-pat\"\nsecretGroup = 7\n",
                  "rules.toml");
  ASSERT_TRUE(rules.ok()) << rules.status().to_string();
  auto det = Detector::create(std::move(*rules));
  ASSERT_TRUE(det.ok());
  auto scratch = (*det)->new_scratch();
  ASSERT_TRUE(scratch.ok());
  const std::string token = "ghp_" + rnd(kAlnum, 36, 99);
  std::vector<Finding> out;
  ASSERT_TRUE((*det)
                  ->detect("token: " + token + "\n", Fragment{"a.txt", {}, nullptr}, **scratch, out)
                  .ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].rule_id, "github-pat");
  EXPECT_EQ(out[0].secret, token);
}

// generic-password and generic-config-secret end in "(?:\r?\n|$)" / "\r?$": their matches
// end at a line break, so they are confirmed in single-line windows (the hit's line and the
// next) instead of 32 KiB ones. Matches after 40 KB of text, with CRLF line ends, and on a
// last line without a line break are all found, on their lines.
TEST(RuleRegex, RulesEndingInALineBreakAreFoundOnTheirLinesAnywhere) {
  std::string text;
  int line = 1;
  auto filler = [&](int n) {
    for (int i = 0; i < n; ++i, ++line) text += "int value_" + std::to_string(i) + " = 0;\r\n";
  };
  const std::string quoted = rnd(kAlnum, 14, 31);
  const std::string config = rnd(kAlnum, 24, 32);
  const std::string last = rnd(kAlnum, 16, 33);
  filler(2000);  // ~44 KB
  const int quoted_line = line++;
  text += "password = \"" + quoted + "\"\r\n";
  filler(3);
  const int config_line = line++;
  text += "export DB_SECRET=" + config + "\r\n";
  filler(2000);
  const int last_line = line;
  text += "password: " + last;  // no line break at the end
  auto det = Detector::create(default_rules());
  ASSERT_TRUE(det.ok());
  auto scratch = (*det)->new_scratch();
  ASSERT_TRUE(scratch.ok());
  std::vector<Finding> out;
  ASSERT_TRUE((*det)->detect(text, Fragment{"app/settings.env", {}, nullptr}, **scratch, out).ok());
  auto at = [&](std::string_view secret) -> int {
    for (const Finding& f : out)
      if (f.secret == secret) return f.line;
    return -1;
  };
  EXPECT_EQ(at(quoted), quoted_line);
  EXPECT_EQ(at(config), config_line);
  EXPECT_EQ(at(last), last_line);
  EXPECT_EQ(out.size(), 3u);
}

}  // namespace
}  // namespace ferry::scan
