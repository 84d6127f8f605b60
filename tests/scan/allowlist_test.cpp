// Rule allowlists, the global allowlist and inline comments.
#include <gtest/gtest.h>

#include "scan/detector.h"
#include "scan/rule_parser.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;

size_t count(std::string_view toml, std::string_view text, std::string_view path = "src/a.txt",
             std::string_view commit = {}) {
  auto rs = parse_rules(toml, "rules.toml");
  EXPECT_TRUE(rs.ok()) << rs.status().to_string();
  if (!rs.ok()) return 999;
  auto det = Detector::create(std::move(*rs));
  EXPECT_TRUE(det.ok());
  if ((*det)->path_allowed(path) || (*det)->commit_allowed(commit)) return 0;
  auto scratch = (*det)->new_scratch();
  std::vector<Finding> out;
  EXPECT_TRUE((*det)->detect(text, Fragment{path, commit, nullptr}, **scratch, out).ok());
  return out.size();
}

const std::string kBase = R"(
[[rules]]
id = "tok"
regex = '''tok_([A-Za-z0-9]{24})'''
)";

std::string tok(unsigned seed = 1) {
  return "tok_" + rnd(kAlnum, 24, seed);
}

TEST(Allowlist, RegexOnSecret) {
  const std::string t = tok();
  const std::string rules =
      kBase + "[[rules.allowlists]]\nregexes = ['''^" + t.substr(4, 6) + "''']\n";
  EXPECT_EQ(count(rules, "a " + t + "\n"), 0u);
  EXPECT_EQ(count(rules, "a " + tok(2) + "\n"), 1u);
}

TEST(Allowlist, RegexTargetMatchAndLine) {
  const std::string rules_line =
      kBase + "[rules.allowlist]\nregexTarget = \"line\"\nregexes = ['''^\\s*#''']\n";
  EXPECT_EQ(count(rules_line, "  # " + tok() + "\n"), 0u);
  EXPECT_EQ(count(rules_line, "x = " + tok() + " # comment\n"), 1u);
  const std::string rules_match =
      kBase + "[rules.allowlist]\nregexTarget = \"match\"\nregexes = ['''^tok_''']\n";
  EXPECT_EQ(count(rules_match, tok() + "\n"), 0u);
  // Against the secret (the default target) the same regex does not match.
  const std::string rules_secret = kBase + "[rules.allowlist]\nregexes = ['''^tok_''']\n";
  EXPECT_EQ(count(rules_secret, tok() + "\n"), 1u);
}

TEST(Allowlist, PathsAndStopwords) {
  const std::string rules =
      kBase + "[[rules.allowlists]]\npaths = ['''^testdata/''']\nstopwords = [\"Zq\"]\n";
  EXPECT_EQ(count(rules, tok() + "\n", "testdata/x.txt"), 0u);
  EXPECT_EQ(count(rules, tok() + "\n", "src/x.txt"), 1u);
  EXPECT_EQ(count(rules, "tok_" + rnd(kAlnum, 10) + "zQ" + rnd(kAlnum, 12) + "\n"), 0u);
}

TEST(Allowlist, ConditionAnd) {
  const std::string rules =
      kBase +
      "[[rules.allowlists]]\ncondition = \"AND\"\npaths = ['''^testdata/''']\n"
      "stopwords = [\"zq\"]\n";
  const std::string with_stop = "tok_" + rnd(kAlnum, 10) + "zq" + rnd(kAlnum, 12) + "\n";
  EXPECT_EQ(count(rules, with_stop, "testdata/a"), 0u);
  EXPECT_EQ(count(rules, with_stop, "src/a"), 1u);
  EXPECT_EQ(count(rules, tok() + "\n", "testdata/a"), 1u);
}

TEST(Allowlist, Commits) {
  const std::string rules = kBase + "[[rules.allowlists]]\ncommits = [\"abc123\"]\n";
  EXPECT_EQ(count(rules, tok() + "\n", "a", "abc123"), 0u);
  EXPECT_EQ(count(rules, tok() + "\n", "a", "def456"), 1u);
  EXPECT_EQ(count(rules, tok() + "\n", "a", ""), 1u);
}

TEST(Allowlist, Global) {
  const std::string rules = kBase +
                            "[allowlist]\npaths = ['''\\.md$''']\nregexes = ['''^AAAA''']\n"
                            "commits = [\"c0ffee\"]\n";
  EXPECT_EQ(count(rules, tok() + "\n", "README.md"), 0u);
  EXPECT_EQ(count(rules, "tok_AAAA" + rnd(kAlnum, 20) + "\n"), 0u);
  EXPECT_EQ(count(rules, tok() + "\n", "x", "c0ffee"), 0u);
  EXPECT_EQ(count(rules, tok() + "\n"), 1u);
}

TEST(Allowlist, GlobalWithTargetRules) {
  const std::string rules = kBase +
                            "[[rules]]\nid = \"other\"\nregex = '''oth_([a-z]{12})'''\n"
                            "[[allowlists]]\ntargetRules = [\"tok\"]\npaths = ['''^vendor/''']\n";
  EXPECT_EQ(count(rules, tok() + "\n", "vendor/x"), 0u);
  EXPECT_EQ(count(rules, "oth_" + rnd("abcdefghijklmnop", 12) + "\n", "vendor/x"), 1u);
}

TEST(Allowlist, InlineComment) {
  EXPECT_EQ(count(kBase, "k = \"" + tok() + "\"  # ferry:allow\n"), 0u);
  EXPECT_EQ(count(kBase, "k = \"" + tok() + "\"  // gitleaks:allow\n"), 0u);
  // Only the line with the comment is allowed.
  EXPECT_EQ(count(kBase, "# ferry:allow\nk = \"" + tok() + "\"\n"), 1u);
}

}  // namespace
}  // namespace ferry::scan
