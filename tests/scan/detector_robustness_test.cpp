// Random buffers made of pieces that steer the engine into its edge cases (keywords at
// buffer edges, unterminated PEM blocks, huge lines, NULs): findings must stay inside the
// buffer and the run must stay bounded. ASan in CI turns any out-of-bounds read into a failure.
#include <gtest/gtest.h>

#include <random>

#include "scan/detector.h"
#include "scan/rule_parser.h"
#include "scan/scan_setup.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;

TEST(DetectorRobustness, RandomBuffers) {
  auto det = default_detector(true);
  ASSERT_TRUE(det.ok());
  auto scratch = (*det)->new_scratch();
  ASSERT_TRUE(scratch.ok());
  const std::string dashes = "-----";
  const std::vector<std::string> pieces = {"\n",
                                           "\r\n",
                                           " ",
                                           "=",
                                           "\"",
                                           "'",
                                           ":",
                                           "password",
                                           "Secret",
                                           "TOKEN",
                                           "api_key",
                                           std::string("gh") + "p_",
                                           std::string("AK") + "IA",
                                           "xoxb-",
                                           "eyJ",
                                           ".eyJ",
                                           dashes + "BEGIN RSA PRIVATE KEY" + dashes,
                                           dashes + "END RSA PRIVATE KEY" + dashes,
                                           "postgres://",
                                           "@",
                                           "ferry:allow",
                                           std::string(1, '\0'),
                                           "export X_PASSWORD=",
                                           std::string("sk-") + "ant-",
                                           "T3Blbk" + std::string("FJ"),
                                           "${",
                                           "\t"};
  std::mt19937 gen(1234);
  for (int iter = 0; iter < 1500; ++iter) {
    std::string buf;
    const int n = std::uniform_int_distribution<int>(0, 60)(gen);
    for (int i = 0; i < n; ++i) {
      if (gen() % 3 == 0) {
        buf += rnd(kAlnum, gen() % 80, static_cast<unsigned>(gen()));
      } else {
        buf += pieces[gen() % pieces.size()];
      }
    }
    std::vector<Finding> out;
    ASSERT_TRUE((*det)->detect(buf, Fragment{"r.txt", {}, nullptr}, **scratch, out).ok());
    for (const Finding& f : out) {
      EXPECT_NE(buf.find(f.secret), std::string::npos) << f.rule_id;
      EXPECT_GE(f.line, 1);
      EXPECT_LE(f.line, f.end_line);
      EXPECT_GE(f.column, 1);
    }
  }
}

TEST(DetectorRobustness, RelaxedPrefilterKeepsRe2Bounds) {
  // {3,40} is relaxed to {3,} for Vectorscan; RE2 must still refuse 50 letters.
  auto rules = parse_rules("[[rules]]\nid = \"b\"\nregex = '''k_([a-z]{3,40})x'''\n", "b.toml");
  ASSERT_TRUE(rules.ok());
  auto det = Detector::create(std::move(*rules));
  ASSERT_TRUE(det.ok());
  auto scratch = (*det)->new_scratch();
  std::vector<Finding> out;
  const std::string letters = "abcdefghijklmnopqrstuvwyz";  // no x
  ASSERT_TRUE(
      (*det)
          ->detect("k_" + rnd(letters, 50) + "x\n", Fragment{"a", {}, nullptr}, **scratch, out)
          .ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(
      (*det)
          ->detect("k_" + rnd(letters, 30) + "x\n", Fragment{"a", {}, nullptr}, **scratch, out)
          .ok());
  EXPECT_EQ(out.size(), 1u);
}

TEST(DetectorRobustness, HugeSingleLineWithManyCandidates) {
  auto det = default_detector(true);
  ASSERT_TRUE(det.ok());
  auto scratch = (*det)->new_scratch();
  std::string line;
  for (int i = 0; i < 20000; ++i) line += "token = 'short' ";  // candidates, none real
  line += std::string("gh") + "p_" + rnd(kAlnum, 36) + "\n";
  std::vector<Finding> out;
  ASSERT_TRUE((*det)->detect(line, Fragment{"min.js", {}, nullptr}, **scratch, out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].rule_id, "github-pat");
}

}  // namespace
}  // namespace ferry::scan

namespace ferry::scan {
namespace {

// Keywords gate a rule as in gitleaks: it runs only on buffers holding one of them, anywhere
// and in any case. The keywords of rules whose regex is in the Vectorscan database are looked
// for only once the regex found a candidate; that check must see a keyword far from the
// candidate too, and must not let a buffer without one through.
TEST(DetectorKeywords, AKeywordAnywhereInTheBufferEnablesTheRuleAndItsAbsenceDisablesIt) {
  auto rules = parse_rules(R"(
[[rules]]
id = "corp-id"
regex = '''\b(CORP[0-9]{8})\b'''
keywords = ["corpmarker"]

[[rules]]
id = "corp-cfg"
path = '''\.cfg$'''
regex = '''pw=(\S{6,})'''
keywords = ["pw="]
)",
                           "keywords.toml");
  ASSERT_TRUE(rules.ok()) << rules.status().to_string();
  auto det = Detector::create(std::move(*rules));
  ASSERT_TRUE(det.ok()) << det.status().to_string();
  auto scratch = (*det)->new_scratch();
  ASSERT_TRUE(scratch.ok());
  auto ids = [&](const std::string& text, std::string_view path = "a.txt") {
    std::vector<Finding> out;
    EXPECT_TRUE((*det)->detect(text, Fragment{path, {}, nullptr}, **scratch, out).ok());
    std::string s;
    for (const Finding& f : out) s += f.rule_id + " ";
    return s;
  };
  const std::string id = "x CORP" + std::string("12345678") + "\n";
  const std::string filler(20000, 'z');
  EXPECT_EQ(ids(id), "");
  EXPECT_EQ(ids("corpmarker\n" + id), "corp-id ");
  EXPECT_EQ(ids("CorpMarker " + filler + "\n" + filler + "\n" + id), "corp-id ");
  EXPECT_EQ(ids(id + filler + "\n" + filler + " CORPMARKER"), "corp-id ");
  EXPECT_EQ(ids("corpmarke\n" + id + "orpmarker\n"), "");
  EXPECT_EQ(ids(id + "cCoRPMARKEcorpMarker"), "corp-id ");  // after a partial match, at the end
  EXPECT_EQ(ids(id + "corpmarke"), "");                     // cut short by the buffer's end
  // A rule confined to paths: its keyword checked on the files whose path matches.
  EXPECT_EQ(ids("PW=s3cr3tvalue\n", "x.cfg"), "");  // the regex is case-sensitive
  EXPECT_EQ(ids("pw=s3cr3tvalue\n", "x.cfg"), "corp-cfg ");
  EXPECT_EQ(ids("pw=s3cr3tvalue\n", "x.txt"), "");
}

}  // namespace
}  // namespace ferry::scan
