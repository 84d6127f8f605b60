// Credential files and config formats that leak in practice (issue 20, item 2): every sample
// of credential_samples.h is reported by the built-in rules with the right rule, secret and
// line, and its clean twin is not reported at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "scan/credential_samples.h"
#include "scan/detector.h"
#include "scan/entropy.h"
#include "scan/format_check.h"
#include "scan/rule_parser.h"
#include "scan/scan_setup.h"

namespace ferry::scan {
namespace {

using testing::b64;
using testing::credential_samples;
using testing::CredentialSample;
using testing::kAlnum;
using testing::rnd;

const Detector& shared_detector() {
  static const auto det = [] {
    auto d = default_detector(true);
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return std::move(*d);
  }();
  return *det;
}

std::vector<Finding> detect_in(std::string_view text, std::string_view path) {
  static const auto scratch = [] {
    auto s = shared_detector().new_scratch();
    EXPECT_TRUE(s.ok());
    return std::move(*s);
  }();
  std::vector<Finding> out;
  Status s = shared_detector().detect(text, Fragment{path, {}, nullptr}, *scratch, out);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

int line_of(const std::string& text, const std::string& secret) {
  const size_t pos = text.find(secret);
  return pos == std::string::npos
             ? -1
             : 1 + static_cast<int>(
                       std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

TEST(CredentialFiles, ThereAreFortyFourFormats) {
  EXPECT_EQ(credential_samples().size(), 44u);
}

TEST(CredentialFiles, EverySampleIsReportedWithRuleSecretAndLine) {
  for (const CredentialSample& s : credential_samples()) {
    const auto found = detect_in(s.text, s.path);
    for (const testing::Expected& e : s.expected) {
      const int want_line = line_of(s.text, e.secret);
      ASSERT_GT(want_line, 0) << s.path;
      auto it = std::find_if(found.begin(), found.end(),
                             [&](const Finding& f) { return f.secret == e.secret; });
      ASSERT_NE(it, found.end()) << s.path << ": " << e.rule << " missed " << e.secret;
      EXPECT_EQ(it->rule_id, e.rule) << s.path;
      EXPECT_EQ(it->line, want_line) << s.path << " " << e.rule;
    }
    // Nothing else: a second finding of the same secret by a generic rule is noise.
    EXPECT_EQ(found.size(), s.expected.size()) << s.path;
  }
}

TEST(CredentialFiles, CleanTwinsAreNotReported) {
  for (const CredentialSample& s : credential_samples()) {
    const auto found = detect_in(s.clean, s.path);
    EXPECT_TRUE(found.empty()) << s.path << ": "
                               << (found.empty() ? "" : found[0].rule_id + " " + found[0].secret);
  }
}

TEST(CredentialFiles, PathRulesNeedTheirFileName) {
  // A .pgpass or master.key line elsewhere is ordinary text.
  const std::string pg = "db1.corp.io:5432:orders:app:" + rnd(kAlnum, 16, 1) + "\n";
  EXPECT_EQ(detect_in(pg, "home/.pgpass").size(), 1u);
  EXPECT_TRUE(detect_in(pg, "notes/hosts.txt").empty());
  const std::string key = testing::hex(32, 2) + "\n";
  EXPECT_EQ(detect_in(key, "app/config/master.key").size(), 1u);
  EXPECT_TRUE(detect_in(key, "app/checksums.md5").empty());
}

TEST(CredentialFiles, DockerAuthMustDecodeToUserAndPassword) {
  const auto auth = [](const std::string& v) {
    return "{\"auths\":{\"r.io\":{\"auth\":\"" + v + "\"}}}\n";
  };
  EXPECT_EQ(detect_in(auth(b64("ci:" + rnd(kAlnum, 20, 3))), "config.json").size(), 1u);
  EXPECT_TRUE(detect_in(auth(b64("no colon in here at all")), "config.json").empty());
  EXPECT_TRUE(detect_in(auth(b64("user:")), "config.json").empty());
  EXPECT_TRUE(detect_in(auth(b64("user:<password>")), "config.json").empty());
  EXPECT_TRUE(detect_in(auth("not base64 at all!"), "config.json").empty());
  const std::string header = "Authorization: Basic " + b64("api:" + rnd(kAlnum, 18, 4)) + "\n";
  EXPECT_EQ(detect_in(header, "notes.txt").size(), 1u);
  EXPECT_TRUE(detect_in("Authorization: Basic " + b64("just-a-name") + "\n", "x").empty());
}

TEST(CredentialFiles, DecodeBase64) {
  std::string out;
  EXPECT_TRUE(decode_base64(b64("user:pw"), out));
  EXPECT_EQ(out, "user:pw");
  EXPECT_TRUE(decode_base64("dXNlcjpwdw", out));  // unpadded
  EXPECT_EQ(out, "user:pw");
  EXPECT_FALSE(decode_base64("a", out));
  EXPECT_FALSE(decode_base64("ab$d", out));
  EXPECT_FALSE(decode_base64(std::string(5000, 'A'), out));
}

TEST(CredentialFiles, GenericPasswordFiltersNamesReferencesAndPlaceholders) {
  const std::string pw = "pass" + std::string("word");
  for (const std::string& v :
       {pw + " = \"${DB_PASS}\"", pw + ": \"{{ vault_db }}\"", pw + "=%(db_pass)s",
        pw + ": changeme", pw + " = self.db_password1", pw + " = os.environ['X1']",
        pw + "=getpass()", pw + ": 12345678", pw + ": required_field", pw + " = '<password>'",
        pw + "_length = 16", std::string("bypass = True"), pw + " = \"test-pass-123\""}) {
    EXPECT_TRUE(detect_in(v + "\n", "app.cfg").empty()) << v;
  }
  const std::string real = testing::human_password(5);
  for (const std::string& v :
       {pw + " = \"" + real + "\"", pw + ": " + real, pw + "=" + real,
        "<add key=\"DbPassword\" value=\"" + real + "\" />",
        "<property name=\"hibernate.connection." + pw + "\">" + real + "</property>"}) {
    auto f = detect_in(v + "\n", "app.cfg");
    ASSERT_EQ(f.size(), 1u) << v;
    EXPECT_EQ(f[0].secret, real) << v;
  }
}

TEST(CredentialFiles, UrlPasswordsButNotDocumentationUrls) {
  const std::string p = rnd(kAlnum, 16, 6);
  auto f = detect_in("proxy = http://svc:" + p + "@proxy.corp.io:3128\n", "x");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].rule_id, "url-password");
  EXPECT_EQ(f[0].secret, p);
  EXPECT_TRUE(detect_in("see https://user:" + p + "@example.com/path\n", "x").empty());
  EXPECT_TRUE(detect_in("ftp://user:password@ftp.corp.io/\n", "x").empty());
  EXPECT_TRUE(detect_in("https://$USER:$TOKEN@git.corp.io\n", "x").empty());
}

TEST(CredentialFiles, LongValueWithARunOfOneCharacterIsNotAPlaceholder) {
  // Firefox's encrypted values start with a key id of zero bytes ("AAAA..."): a run that
  // is a small part of a long value does not make it a placeholder.
  EXPECT_FALSE(is_placeholder("MDoEEPg" + std::string(19, 'A') + "Ew" + rnd(kAlnum, 60, 7)));
  EXPECT_TRUE(is_placeholder("abcd" + std::string(12, '0')));
}

// Writes the samples as the benchmark corpus of bench/scan/leaks.sh (not a test of its own):
// DIR/leaked/<path>, DIR/clean/<path> and DIR/expected.tsv (path, line, rule per secret).
TEST(CredentialCorpus, WriteForBenchmark) {
  const char* dir = std::getenv("FERRY_SCAN_CORPUS_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "FERRY_SCAN_CORPUS_DIR not set";
  const std::filesystem::path root(dir);
  std::filesystem::create_directories(root);
  std::ofstream tsv(root / "expected.tsv");
  for (const CredentialSample& s : credential_samples()) {
    for (const char* kind : {"leaked", "clean"}) {
      const auto p = root / kind / s.path;
      std::filesystem::create_directories(p.parent_path());
      std::ofstream(p, std::ios::binary) << (std::string(kind) == "leaked" ? s.text : s.clean);
    }
    for (const testing::Expected& e : s.expected)
      tsv << s.path << '\t' << line_of(s.text, e.secret) << '\t' << e.rule << '\n';
  }
  ASSERT_TRUE(tsv.good());
}

}  // namespace
}  // namespace ferry::scan
