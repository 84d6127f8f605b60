// scan_path on real temporary trees: skipping, ignore files and baselines.
#include "scan/scanner.h"

#include <gtest/gtest.h>

#include <fstream>

#include "scan/ignore.h"
#include "scan/report.h"
#include "scan/scan_setup.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

std::string gh(unsigned seed) {
  return std::string("gh") + "p_" + rnd(kAlnum, 36, seed);
}

ScanReport scan_ok(const std::string& path, const ScanOptions& opts = {}) {
  auto r = scan_path(path, opts);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(*r) : ScanReport{};
}

TEST(ScanPath, FindsSecretsInATree) {
  TempDir d;
  d.write("a/config.yaml", "name: web\ntoken: " + gh(1) + "\n");
  d.write("b/c/notes.txt", "nothing here\n");
  d.write("b/c/deep.env", "x=1\nNPM=" + std::string("npm") + "_" + rnd(kAlnum, 36, 2) + "\n");
  d.write(".git/config", gh(3) + "\n");  // never scanned
  ScanOptions opts;
  opts.threads = 2;
  ScanReport r = scan_ok(d.str(), opts);
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].file, "a/config.yaml");
  EXPECT_EQ(r.findings[0].line, 2);
  EXPECT_EQ(r.findings[0].rule_id, "github-pat");
  EXPECT_EQ(r.findings[1].file, "b/c/deep.env");
  EXPECT_EQ(r.findings[1].rule_id, "npm-access-token");
  EXPECT_EQ(r.stats.files_scanned, 3u);
  // Fingerprint: file:rule:16 hex of sha256(secret).
  const std::string& fp = r.findings[0].fingerprint;
  EXPECT_EQ(fp.rfind("a/config.yaml:github-pat:", 0), 0u) << fp;
  EXPECT_EQ(fp.size(), std::string("a/config.yaml:github-pat:").size() + 16);
}

TEST(ScanPath, TheSharedDefaultDetectorKeepsInlineAllowApart) {
  // The built-in rules' detector is built once per process and shared by every scan; a scan
  // that refuses inline allow comments (the release gate) must not get one that honours them.
  auto a = default_detector(true);
  auto b = default_detector(true);
  auto strict = default_detector(false);
  ASSERT_TRUE(a.ok() && b.ok() && strict.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), strict->get());
  TempDir d;
  d.write("app.env", "TOKEN=" + gh(7) + "  # ferry:allow\n");
  ScanOptions honour;
  EXPECT_EQ(scan_ok(d.str(), honour).findings.size(), 0u);
  ScanOptions refuse;
  refuse.inline_allow = false;
  EXPECT_EQ(scan_ok(d.str(), refuse).findings.size(), 1u);
  EXPECT_EQ(scan_ok(d.str(), honour).findings.size(), 0u);
}

TEST(ScanPath, SingleFile) {
  TempDir d;
  const std::string p = d.write("one.txt", "k " + gh(4) + "\n");
  ScanReport r = scan_ok(p);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].file, p);
}

TEST(ScanPath, SkipsBinaryAndOversizeFiles) {
  TempDir d;
  std::string bin =
      "\x7f"
      "ELF";
  bin.push_back('\0');
  bin += gh(5);
  d.write("prog.bin", bin);
  d.write("big.txt", std::string(4096, 'a') + "\n" + gh(6) + "\n");
  d.write("small.txt", gh(7) + "\n");
  ScanOptions opts;
  opts.max_file_size = 1024;
  ScanReport r = scan_ok(d.str(), opts);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].file, "small.txt");
  EXPECT_EQ(r.stats.files_skipped_binary, 1u);
  EXPECT_EQ(r.stats.files_skipped_large, 1u);
  EXPECT_EQ(r.stats.files_scanned, 1u);
}

TEST(ScanPath, MissingPathIsAnError) {
  auto r = scan_path("/nonexistent/ferry-scan-dir", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/ferry-scan-dir"), std::string::npos);
}

TEST(ScanPath, BadConfigIsAnError) {
  TempDir d;
  d.write("rules.toml", "[[rules]]\nid = \"x\"\nregex = '('\n");
  ScanOptions opts;
  opts.config_path = (d.path() / "rules.toml").string();
  auto r = scan_path(d.str(), opts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("rule 'x'"), std::string::npos);
}

TEST(ScanPath, IgnoreFileByFingerprint) {
  TempDir d;
  d.write("a.txt", "t1 " + gh(8) + "\nt2 " + gh(9) + "\n");
  ScanReport first = scan_ok(d.str());
  ASSERT_EQ(first.findings.size(), 2u);
  // The default ignore file in the root is picked up.
  d.write(".ferryignore", "# accepted\n" + first.findings[0].fingerprint + "\n\n");
  ScanReport second = scan_ok(d.str());
  ASSERT_EQ(second.findings.size(), 1u);
  EXPECT_EQ(second.findings[0].fingerprint, first.findings[1].fingerprint);
  EXPECT_EQ(second.stats.findings_ignored, 1u);
  // The fingerprint follows the secret, not the line: moving it keeps it ignored...
  d.write("a.txt", "\n\nt2 " + gh(9) + "\nt1 " + gh(8) + "\n");
  EXPECT_EQ(scan_ok(d.str()).findings.size(), 1u);
  // ...and a different secret on the ignored line is reported.
  d.write("a.txt", "t1 " + gh(10) + "\nt2 " + gh(9) + "\n");
  EXPECT_EQ(scan_ok(d.str()).findings.size(), 2u);
}

TEST(ScanPath, GitleaksIgnoreFileAndExplicitIgnoreFile) {
  TempDir d;
  d.write("a.txt", "t " + gh(11) + "\n");
  const std::string fp = scan_ok(d.str()).findings.at(0).fingerprint;
  d.write(".gitleaksignore", fp + "\n");
  EXPECT_TRUE(scan_ok(d.str()).findings.empty());
  ScanOptions opts;
  opts.ignore_file = d.write("other-ignore", "nothing\n");
  EXPECT_EQ(scan_ok(d.str(), opts).findings.size(), 1u);
  opts.ignore_file = (d.path() / "missing").string();
  EXPECT_FALSE(scan_path(d.str(), opts).ok());
}

TEST(ScanPath, Baseline) {
  TempDir d;
  d.write("src/a.txt", "old " + gh(12) + "\n");
  ScanReport first = scan_ok(d.str());
  ASSERT_EQ(first.findings.size(), 1u);
  TempDir out;
  const std::string baseline = out.write("baseline.json", report_json(first, true).dump());
  d.write("src/b.txt", "new " + gh(13) + "\n");
  ScanOptions opts;
  opts.baseline_path = baseline;
  ScanReport second = scan_ok(d.str(), opts);
  ASSERT_EQ(second.findings.size(), 1u);
  EXPECT_EQ(second.findings[0].file, "src/b.txt");
  EXPECT_EQ(second.stats.findings_baseline, 1u);
  opts.baseline_path = out.write("bad.json", "{\"no\": 1}");
  auto bad = scan_path(d.str(), opts);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.json"), std::string::npos);
}

TEST(ScanPath, ThreadsGiveTheSameReport) {
  TempDir d;
  for (unsigned i = 0; i < 40; ++i) {
    std::string body(2000 + i * 37, 'x');
    body += "\nk = " + gh(100 + i) + "\n";
    d.write("f" + std::to_string(i) + ".txt", body);
  }
  ScanOptions one, four;
  one.threads = 1;
  four.threads = 4;
  ScanProgress progress;
  four.progress = &progress;
  ScanReport a = scan_ok(d.str(), one), b = scan_ok(d.str(), four);
  ASSERT_EQ(a.findings.size(), 40u);
  ASSERT_EQ(b.findings.size(), 40u);
  for (size_t i = 0; i < 40; ++i) EXPECT_EQ(a.findings[i].fingerprint, b.findings[i].fingerprint);
  EXPECT_EQ(progress.files.load(), 40u);
  EXPECT_EQ(progress.bytes.load(), b.stats.bytes_scanned);
}

}  // namespace
}  // namespace ferry::scan
