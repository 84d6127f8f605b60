// One true positive and one false positive per built-in rule.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include <algorithm>

#include "scan/credential_samples.h"
#include "scan/detector.h"
#include "scan/rule_parser.h"
#include "scan/scan_setup.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::kB32;
using testing::kB64;
using testing::kB64Url;
using testing::kDigits;
using testing::kHex;
using testing::kUpper;
using testing::rnd;

std::vector<Finding> detect(std::string_view text, std::string_view path = "src/app.cfg") {
  static const auto det = [] {
    auto d = default_detector(true);
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return std::move(*d);
  }();
  auto scratch = det->new_scratch();
  EXPECT_TRUE(scratch.ok());
  std::vector<Finding> out;
  Status s = det->detect(text, Fragment{path, {}, nullptr}, **scratch, out);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

const Finding* find_rule(const std::vector<Finding>& fs, std::string_view id) {
  for (const Finding& f : fs) {
    if (f.rule_id == id) return &f;
  }
  return nullptr;
}

struct Case {
  std::string rule;
  std::string positive;  // text holding `secret`
  std::string secret;
  std::string negative;  // similar text the rule must not report
};

std::string pem(std::string_view kind) {
  std::string body;
  for (int i = 0; i < 6; ++i) body += rnd(kB64, 64, static_cast<unsigned>(i)) + "\n";
  const std::string dashes = "-----";
  return dashes + "BEGIN " + std::string(kind) + dashes + "\n" + body + dashes + "END " +
         std::string(kind) + dashes + "\n";
}

std::vector<Case> cases() {
  std::vector<Case> c;
  auto add = [&](std::string rule, std::string before, std::string secret, std::string after,
                 std::string negative) {
    c.push_back({std::move(rule), before + secret + after, secret, std::move(negative)});
  };
  const std::string akia = std::string("AK") + "IA";
  add("aws-access-key-id", "aws_access_key_id = ", akia + rnd(kB32, 16), "\n",
      "aws_access_key_id = " + akia + "IOSFODNN7" + "EXAMPLE\n");
  add("aws-secret-access-key", "aws_secret_access_key = ", rnd(kB64, 40), "\n",
      "aws_secret_access_key = " + std::string(40, 'A').replace(0, 8, "abcdABCD") + "\n");
  add("github-pat", "token: ", std::string("gh") + "p_" + rnd(kAlnum, 36), "\n",
      "token: " + std::string("gh") + "p_" + rnd(kAlnum, 20) + "\n");
  add("github-oauth-token", "t=", std::string("gh") + "o_" + rnd(kAlnum, 36, 2), " end\n",
      "t=" + std::string("gh") + "o_" + "xxxx" + rnd(kAlnum, 32) + " end\n");
  add("github-app-token", "GH=", std::string("gh") + "s_" + rnd(kAlnum, 36, 3), "\n",
      "GH=" + std::string("gh") + "x_" + rnd(kAlnum, 36, 3) + "\n");
  add("github-refresh-token", "r ", std::string("gh") + "r_" + rnd(kAlnum, 76, 4), "\n",
      "r " + std::string("gh") + "r_" + rnd(kAlnum, 12, 4) + "\n");
  add("github-fine-grained-pat", "pat ",
      std::string("github") + "_pat_" + rnd(kAlnum, 22) + "_" + rnd(kAlnum, 59), "\n",
      "pat " + std::string("github") + "_pat_" + rnd(kAlnum, 22) + "\n");
  add("gitlab-pat", "GITLAB=", std::string("gl") + "pat-" + rnd(kAlnum, 20, 5), "\n",
      "GITLAB=" + std::string("gl") + "pat-" + "abc\n");
  add("slack-token", "slack ",
      std::string("xo") + "xb-" + rnd(kDigits, 11) + "-" + rnd(kDigits, 12) + "-" +
          rnd(kAlnum, 24, 6),
      "\n", "slack " + std::string("xo") + "xb-" + "your-token-here\n");
  add("slack-webhook-url", "url = \"https://",
      std::string("hooks.slack") + ".com/services/T" + rnd(kUpper, 8) + "/B" + rnd(kUpper, 8) +
          "/" + rnd(kAlnum, 24, 8),
      "\"\n",
      "url = \"https://" + std::string("hooks.slack") + ".com/services/TXXXXXXXX/BXXXXXXXX/" +
          std::string(24, 'X') + "\"\n");
  add("stripe-secret-key", "STRIPE=", std::string("sk") + "_live_" + rnd(kAlnum, 24, 9), "\n",
      "STRIPE_PUBLISHABLE=" + std::string("pk") + "_live_" + rnd(kAlnum, 24, 9) + "\n");
  add("google-api-key", "key: ", std::string("AI") + "za" + rnd(kB64Url, 35, 10), "\n",
      "key: " + std::string("AI") + "za" + rnd(kB64Url, 20, 10) + "\n");
  add("npm-access-token",
      "//registry.npmjs.org/:_authToken=", std::string("npm") + "_" + rnd(kAlnum, 36, 11), "\n",
      "npm_config_cache=/tmp/npm_cache_directory_for_builds\n");
  add("pypi-upload-token",
      "password = ", std::string("pypi-") + "AgEIcHlwaS5vcmc" + rnd(kB64Url, 80, 12), "\n",
      "password = " + std::string("pypi-") + "AgEIcHlwaS5vcm" + "\n");
  add("sendgrid-api-key",
      "SENDGRID=", std::string("SG") + "." + rnd(kB64Url, 22, 13) + "." + rnd(kB64Url, 43, 14),
      "\n", "SENDGRID=" + std::string("SG") + ".example." + rnd(kB64Url, 43, 14) + "\n");
  add("twilio-api-key", "twilio sid ", std::string("S") + "K" + rnd(kHex, 32, 15), "\n",
      "twilio sid " + std::string("S") + "K" + std::string(32, '0') + "\n");
  add("openai-api-key", "OPENAI_API_KEY=",
      std::string("sk-") + "proj-" + rnd(kAlnum, 24, 16) + "T3Blbk" + "FJ" + rnd(kAlnum, 24, 17),
      "\n", "OPENAI_MODEL=" + std::string("sk-") + rnd(kAlnum, 48, 16) + "\n");
  add("anthropic-api-key",
      "ANTHROPIC=", std::string("sk-") + "ant-" + "api03-" + rnd(kB64Url, 93, 18) + "AA", "\n",
      "ANTHROPIC=" + std::string("sk-") + "ant-" + "api03-short\n");
  const std::string key_block = pem("RSA PRIVATE KEY");
  c.push_back({"private-key", "key: |\n" + key_block, key_block.substr(0, key_block.size() - 1),
               pem("PUBLIC KEY")});
  add("jwt", "Authorization: Bearer ",
      std::string("ey") + "J" + rnd(kB64Url, 20, 19) + ".ey" + "J" + rnd(kB64Url, 40, 20) + "." +
          rnd(kB64Url, 43, 21),
      "\n", "eyJhbGciOi is the start of many headers\n");
  add("connection-string-password", "DATABASE_URL=postgres://app:", rnd(kAlnum, 16, 22),
      "@db.internal:5432/app\n",
      "DATABASE_URL=postgres://app:" + rnd(kAlnum, 16, 22) + "@localhost:5432/app\n");
  add("basic-auth-header", "curl -H 'Authorization: Basic ",
      testing::b64("svc:" + rnd(kAlnum, 20, 25)), "' https://api.corp.io\n",
      "curl -H 'Authorization: Basic " + testing::b64("svc") + "' https://api.corp.io\n");
  add("generic-secret-assignment", "api_key = \"", rnd(kAlnum, 32, 23), "\"\n",
      "password = \"hunter2hunter2\"\n");
  add("generic-config-secret", "export DB_SECRET=", rnd(kAlnum, 24, 24), "\n",
      "export DB_SECRET=$OTHER_VARIABLE_NAME\n");
  return c;
}

TEST(DefaultRules, Parse) {
  const RuleSet& rules = default_rules();
  EXPECT_GE(rules.rules.size(), 20u);
  auto det = Detector::create(rules);
  ASSERT_TRUE(det.ok()) << det.status().to_string();
  // Every built-in regex is simple enough for Vectorscan's prefilter mode; only the rules
  // confined to paths (.netrc, .pgpass, master.key) are left to RE2 on matching files.
  size_t path_rules = 0;
  for (const Rule& r : rules.rules) path_rules += r.path_re && !r.regex.empty();
  EXPECT_EQ(path_rules, 3u);
  EXPECT_EQ((*det)->full_scan_rules(), path_rules);
}

TEST(DefaultRules, EveryRuleHasACase) {
  auto all = cases();
  for (const Rule& r : default_rules().rules) {
    bool found = false;
    for (const Case& c : all) found = found || c.rule == r.id;
    // Rules for credential files are covered by credential_files_test.cpp's samples.
    for (const auto& s : testing::credential_samples())
      for (const auto& e : s.expected) found = found || e.rule == r.id;
    EXPECT_TRUE(found) << "no test case for rule " << r.id;
  }
}

TEST(DefaultRules, TruePositives) {
  for (const Case& c : cases()) {
    auto fs = detect(c.positive);
    const Finding* f = find_rule(fs, c.rule);
    ASSERT_NE(f, nullptr) << c.rule << " missed in: " << c.positive;
    EXPECT_EQ(f->secret, c.secret) << c.rule;
    EXPECT_EQ(f->file, "src/app.cfg");
    EXPECT_GE(f->line, 1);
  }
}

TEST(DefaultRules, FalsePositives) {
  for (const Case& c : cases()) {
    auto fs = detect(c.negative);
    EXPECT_EQ(find_rule(fs, c.rule), nullptr) << c.rule << " reported: " << c.negative;
  }
}

TEST(DefaultRules, LineAndColumn) {
  const std::string tok = std::string("gh") + "p_" + rnd(kAlnum, 36);
  auto fs = detect("first line\nsecond line\n  x = " + tok + "\n");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].line, 3);
  EXPECT_EQ(fs[0].column, 7);
  EXPECT_EQ(fs[0].end_line, 3);
  EXPECT_EQ(fs[0].end_column, 6 + static_cast<int>(tok.size()));
}

TEST(DefaultRules, PlaceholdersAreSuppressed) {
  for (const std::string& v : {std::string("${API_TOKEN_FROM_ENV}"), std::string("<your-api-key>"),
                               std::string("changeme-changeme"), std::string("xxxxxxxxxxxxxx"),
                               std::string("{{ vault_api_key }}")}) {
    auto fs = detect("api_key = \"" + v + "\"\n");
    EXPECT_TRUE(fs.empty()) << v;
  }
}

TEST(DefaultRules, ConnectionStringsWithDefaultPasswords) {
  for (const char* pw : {"hunter2", "postgres", "guest", "Password"}) {
    auto fs = detect(std::string("url: mysql://root:") + pw + "@db.internal/app\n");
    EXPECT_EQ(find_rule(fs, "connection-string-password"), nullptr) << pw;
  }
  auto fs = detect("url: mongodb+srv://svc:" + rnd(kAlnum, 14, 40) + "@cluster0.internal/x\n");
  EXPECT_NE(find_rule(fs, "connection-string-password"), nullptr);
}

TEST(DefaultRules, InlineAllowComments) {
  const std::string tok = std::string("gh") + "p_" + rnd(kAlnum, 36);
  EXPECT_EQ(detect("x = " + tok + "  # ferry:allow\n").size(), 0u);
  EXPECT_EQ(detect("x = " + tok + "  // gitleaks:allow\n").size(), 0u);
  EXPECT_EQ(detect("x = " + tok + "\n").size(), 1u);
}

TEST(DefaultRules, ManySecretsInOneLineAndFile) {
  std::string text;
  for (unsigned i = 0; i < 50; ++i) {
    text += "a = " + std::string("gh") + "p_" + rnd(kAlnum, 36, i) + " b = " + std::string("npm") +
            "_" + rnd(kAlnum, 36, i + 100) + "\n";
    text += std::string(200, 'z') + "\n";
  }
  auto fs = detect(text);
  ASSERT_EQ(fs.size(), 100u);
  // Line numbers stay right across rules and windows (line i*2+1 holds pair i).
  for (const Finding& f : fs) {
    const size_t pos = text.find(f.secret);
    const int want = 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
    EXPECT_EQ(f.line, want) << f.rule_id;
    EXPECT_EQ(f.column, f.rule_id == "github-pat" ? 5 : 50) << f.rule_id;
  }
}

// Texts for the prefilter checks: every sample of the tests, plus lines in the shapes the
// prefiltered rules were written for (prefixes, namespaces, attributes, values on the next line).
std::vector<std::string> prefilter_texts() {
  std::vector<std::string> t;
  for (const Case& c : cases()) {
    t.push_back(c.positive);
    t.push_back(c.negative);
  }
  for (const auto& s : testing::credential_samples()) {
    t.push_back(s.text);
    t.push_back(s.clean);
  }
  const std::string v = rnd(kAlnum, 24, 60);
  t.push_back("export API_TOKEN=" + v + "\n  - secret_key: " + v + "\nset AUTH_KEY=" + v +
              "\r\nmaster.key = " + v + "\nclient_secret:\t" + v);
  t.push_back("<ns:dbPassword attr=\"x\">" + v +
              "</ns:dbPassword>\n<property name=\"db.password\"" + " type=\"s\">" + v +
              "</property>\n<add key=\"DbPassword\"\n   value=\"" + v +
              "\" />\n<Pass encoding=\"base64\">" + testing::b64(v) + "</Pass>\n");
  t.push_back("HEROKU_API_KEY=" + testing::uuid(61) + "\nheroku_token: " + std::string("HR") +
              "KU-" + rnd(kB64Url, 60, 62) + "\n");
  t.push_back("x:$argon2id$v=19$m=65536,t=3,p=4$" + rnd(kB64, 22, 63) + "$" + rnd(kB64, 43, 64) +
              "\ny:{SSHA}" + rnd(kB64, 32, 65) + "\nz:$2b$12$" + rnd(kB64, 53, 66) + "\n");
  t.push_back("key: " + std::string("AI") + "za" + rnd(kB64Url, 35, 67) + "\nk=" +
              std::string("sk-") + rnd(kAlnum, 20, 68) + "T3Blbk" + "FJ" + rnd(kAlnum, 20, 69));
  return t;
}

// A built-in rule's prefilter (rule.h) stands in for its regex in Vectorscan: it must match a
// part of every match of the regex that ends on the line where that match ends, or the
// detector would not look at the match's line. Checked on every sample text.
TEST(DefaultRules, PrefiltersMatchInsideEveryMatchEndingOnItsLastLine) {
  const auto texts = prefilter_texts();
  size_t with_prefilter = 0;
  for (const Rule& r : default_rules().rules) {
    if (r.prefilter.empty()) continue;
    ++with_prefilter;
    const re2::RE2 pre(r.prefilter);
    ASSERT_TRUE(pre.ok()) << r.id << ": " << pre.error();
    const re2::RE2 re(r.regex);  // built-in rules are compiled by the detector (Rule::re is null)
    ASSERT_TRUE(re.ok()) << r.id << ": " << re.error();
    size_t matches = 0;
    for (const std::string& text : texts) {
      const re2::StringPiece all(text);
      re2::StringPiece m;
      for (size_t pos = 0;
           pos <= text.size() && re.Match(all, pos, text.size(), re2::RE2::UNANCHORED, &m, 1);) {
        const size_t s = static_cast<size_t>(m.data() - text.data());
        const size_t e = s + m.size();
        pos = s + std::max<size_t>(m.size(), 1);
        if (m.empty()) continue;
        ++matches;
        size_t last = e - 1;
        if (text[last] == '\n' && last > s) --last;
        const size_t nl = text.rfind('\n', last == 0 ? 0 : last - 1);
        const size_t line_start = (last == 0 || nl == std::string::npos) ? 0 : nl + 1;
        // Some match of the prefilter inside this one ends on its last line.
        bool seen = false;
        re2::StringPiece p;
        for (size_t at = s;
             !seen && at < e && pre.Match(all, at, e, re2::RE2::UNANCHORED, &p, 1);) {
          const size_t pe = static_cast<size_t>(p.data() - text.data()) + p.size();
          seen = pe > line_start;
          at = static_cast<size_t>(p.data() - text.data()) + std::max<size_t>(p.size(), 1);
        }
        EXPECT_TRUE(seen) << r.id << ": prefilter misses the match " << m;
      }
    }
    EXPECT_GT(matches, 0u) << r.id << ": no sample text to check its prefilter on";
  }
  EXPECT_GE(with_prefilter, 6u);
}

// And the detector finds the same with the prefilters as with the rules' own regexes.
TEST(DefaultRules, PrefiltersChangeNoFinding) {
  RuleSet plain = default_rules();
  for (Rule& r : plain.rules) r.prefilter.clear();
  auto with = Detector::create(default_rules());
  auto without = Detector::create(plain);
  ASSERT_TRUE(with.ok() && without.ok());
  auto run = [](const Detector& d, const std::string& text) {
    auto scratch = d.new_scratch();
    EXPECT_TRUE(scratch.ok());
    std::vector<Finding> out;
    EXPECT_TRUE(d.detect(text, Fragment{"conf/app.cfg", {}, nullptr}, **scratch, out).ok());
    std::vector<std::string> keys;
    for (const Finding& f : out) {
      keys.push_back(f.rule_id + ":" + std::to_string(f.line) + ":" + std::to_string(f.column) +
                     ":" + f.secret);
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  size_t findings = 0;
  for (const std::string& text : prefilter_texts()) {
    const auto a = run(**with, text);
    EXPECT_EQ(a, run(**without, text)) << text;
    findings += a.size();
  }
  EXPECT_GT(findings, 50u);
}

TEST(DefaultRules, LockFilesAreAllowlisted) {
  auto d = default_detector(true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->path_allowed("web/package-lock.json"));
  EXPECT_FALSE((*d)->path_allowed("web/package.json"));
}

}  // namespace
}  // namespace ferry::scan
