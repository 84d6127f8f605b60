// The cache of compiled Vectorscan databases (db_cache.h): a second process loads what the
// first stored, and a cache file an attacker could have written or edited is never used.
#include "scan/db_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/crypto.h"
#include "scan/detector.h"
#include "scan/rule_parser.h"
#include "scan/scanner.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

namespace fs = std::filesystem;
using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

std::string cache_test_token() {
  return "gh" + std::string("p_") + rnd(kAlnum, 36, 11);
}

std::unique_ptr<Detector> default_detector_in(const std::string& cache_dir) {
  auto det = Detector::create(default_rules(), cache_dir);
  EXPECT_TRUE(det.ok()) << det.status().to_string();
  return det.ok() ? std::move(*det) : nullptr;
}

// Rule ids the detector reports for one line holding a GitHub token.
std::vector<std::string> cache_test_rules_found(const Detector& det) {
  const std::string text = "export GITHUB_TOKEN=" + cache_test_token() + "\n";
  auto scratch = det.new_scratch();
  EXPECT_TRUE(scratch.ok());
  std::vector<Finding> out;
  EXPECT_TRUE(det.detect(text, Fragment{"deploy.sh", {}, nullptr}, **scratch, out).ok());
  std::vector<std::string> ids;
  for (const Finding& f : out) ids.push_back(f.rule_id);
  return ids;
}

// The one database file in `dir` ("vs-<key>.db").
fs::path only_cache_db(const fs::path& dir) {
  fs::path db;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".db") {
      db = e.path();
      ++n;
    }
  }
  EXPECT_EQ(n, 1) << dir;
  return db;
}

std::string cache_file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put_cache_file(const fs::path& p, const std::string& data, mode_t mode) {
  fs::remove(p);
  std::ofstream(p, std::ios::binary) << data;
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

// A database file stored under the default rules' key whose database is that of a rule
// that never matches, with a correct checksum: what an attacker who can write the cache
// would plant to switch the built-in rules off.
std::string forged_cache_file(const fs::path& default_db) {
  TempDir other;
  auto rs =
      parse_rules("[[rules]]\nid = \"never\"\nregex = '''zq9x_never_[0-9]{40}'''\n", "r.toml");
  EXPECT_TRUE(rs.ok());
  auto det = Detector::create(std::move(*rs), other.str());
  EXPECT_TRUE(det.ok());
  const std::string other_file = cache_file_bytes(only_cache_db(other.path()));
  const std::string key = default_db.stem().string().substr(3);  // "vs-<key>"
  const size_t header = std::string("ferry-vectorscan-db-1\n").size() + 2 * 65;
  const std::string payload = other_file.substr(header);
  return "ferry-vectorscan-db-1\n" + key + "\n" + sha256_hex(payload) + "\n" + payload;
}

TEST(DbCache, ASecondDetectorLoadsTheDatabaseTheFirstStoredAndFindsTheSame) {
  TempDir dir;
  auto first = default_detector_in(dir.str());
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->db_from_cache());
  EXPECT_EQ(first->db_cache_note(), "compiled and stored");
  const fs::path db = only_cache_db(dir.path());
  struct stat st {};
  ASSERT_EQ(::stat(db.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = default_detector_in(dir.str());
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->db_from_cache()) << second->db_cache_note();
  EXPECT_EQ(cache_test_rules_found(*first), std::vector<std::string>{"github-pat"});
  EXPECT_EQ(cache_test_rules_found(*second), cache_test_rules_found(*first));
}

TEST(DbCache, MissingCacheDirectoryIsCreatedPrivate) {
  TempDir dir;
  const std::string cache = dir.str() + "/a/b/ferry";
  auto det = default_detector_in(cache);
  ASSERT_TRUE(det);
  struct stat st {};
  ASSERT_EQ(::stat(cache.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(default_detector_in(cache)->db_from_cache());
}

TEST(DbCache, ADamagedFileIsRefusedThenReplaced) {
  TempDir dir;
  ASSERT_TRUE(default_detector_in(dir.str()));
  const fs::path db = only_cache_db(dir.path());
  std::string data = cache_file_bytes(db);
  data[data.size() - 100] ^= 0x5a;  // a byte of the serialized database
  put_cache_file(db, data, 0600);
  auto det = default_detector_in(dir.str());
  ASSERT_TRUE(det);
  EXPECT_FALSE(det->db_from_cache());
  EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"});
  EXPECT_NE(cache_file_bytes(db), data);  // compiled again and stored over the damaged file
  EXPECT_TRUE(default_detector_in(dir.str())->db_from_cache());
  // Truncated, and a header only.
  put_cache_file(db, data.substr(0, data.size() / 2), 0600);
  EXPECT_FALSE(default_detector_in(dir.str())->db_from_cache());
  put_cache_file(db, data.substr(0, 150), 0600);
  EXPECT_FALSE(default_detector_in(dir.str())->db_from_cache());
}

TEST(DbCache, AForgedDatabaseDisablesRulesOnlyWhereTheChecksAllowIt) {
  TempDir dir;
  ASSERT_TRUE(default_detector_in(dir.str()));
  const fs::path db = only_cache_db(dir.path());
  const std::string forged = forged_cache_file(db);

  // The control: in the user's own private cache the forgery is loaded and the rule is
  // blind. So the refusals below are what keep the rules on.
  put_cache_file(db, forged, 0600);
  {
    auto det = default_detector_in(dir.str());
    ASSERT_TRUE(det->db_from_cache());
    EXPECT_TRUE(cache_test_rules_found(*det).empty());
  }
  // Writable by group or others: refused, compiled, found.
  for (mode_t mode : {0666, 0620, 0602}) {
    put_cache_file(db, forged, mode);
    auto det = default_detector_in(dir.str());
    EXPECT_FALSE(det->db_from_cache()) << std::oct << mode;
    EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"})
        << std::oct << mode;
  }
  // A directory others may write to (as /tmp itself): refused, and nothing stored there.
  for (mode_t mode : {01777, 0777, 0770}) {
    put_cache_file(db, forged, 0600);
    ASSERT_EQ(::chmod(dir.str().c_str(), mode), 0);
    auto det = default_detector_in(dir.str());
    EXPECT_FALSE(det->db_from_cache()) << std::oct << mode;
    EXPECT_NE(det->db_cache_note().find("writable by others"), std::string::npos);
    EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"})
        << std::oct << mode;
    EXPECT_EQ(cache_file_bytes(db), forged);  // not overwritten in a shared place
    ASSERT_EQ(::chmod(dir.str().c_str(), 0700), 0);
  }
  // A symlink in place of the file, pointing at the forgery elsewhere: not followed.
  TempDir elsewhere;
  const fs::path target = elsewhere.path() / "x.db";
  put_cache_file(target, forged, 0600);
  fs::remove(db);
  fs::create_symlink(target, db);
  {
    auto det = default_detector_in(dir.str());
    EXPECT_FALSE(det->db_from_cache());
    EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"});
  }
  // A symlink in place of the directory: refused too.
  fs::remove(db);
  put_cache_file(elsewhere.path() / db.filename(), forged, 0600);
  const fs::path link = dir.path() / "cache-link";
  fs::create_symlink(elsewhere.path(), link);
  {
    auto det = default_detector_in(link.string());
    EXPECT_FALSE(det->db_from_cache());
    EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"});
  }
}

TEST(DbCache, AFileOrDirectoryOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give files to another user";
  TempDir dir;
  ASSERT_TRUE(default_detector_in(dir.str()));
  const fs::path db = only_cache_db(dir.path());
  const std::string forged = forged_cache_file(db);
  put_cache_file(db, forged, 0600);
  ASSERT_EQ(::chown(db.c_str(), 65534, 65534), 0);
  {
    auto det = default_detector_in(dir.str());
    EXPECT_FALSE(det->db_from_cache());
    EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"});
  }
  put_cache_file(db, forged, 0600);
  ASSERT_EQ(::chown(dir.str().c_str(), 65534, 65534), 0);
  {
    auto det = default_detector_in(dir.str());
    EXPECT_FALSE(det->db_from_cache());
    EXPECT_EQ(cache_test_rules_found(*det), std::vector<std::string>{"github-pat"});
  }
  ASSERT_EQ(::chown(dir.str().c_str(), 0, 0), 0);
}

TEST(DbCache, ADatabaseUnderAnotherRuleSetsKeyIsNotLoaded) {
  // Two rule sets never share a file: a changed rule gets a new key.
  TempDir dir;
  auto rs1 = parse_rules("[[rules]]\nid = \"a\"\nregex = '''aa_[0-9]{30}'''\n", "r.toml");
  auto rs2 = parse_rules("[[rules]]\nid = \"a\"\nregex = '''aa_[0-9]{31}'''\n", "r.toml");
  ASSERT_TRUE(rs1.ok() && rs2.ok());
  auto d1 = Detector::create(std::move(*rs1), dir.str());
  auto d2 = Detector::create(std::move(*rs2), dir.str());
  ASSERT_TRUE(d1.ok() && d2.ok());
  EXPECT_FALSE((*d1)->db_from_cache());
  EXPECT_FALSE((*d2)->db_from_cache());
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.path().extension() == ".db";
  EXPECT_EQ(files, 2u);
}

TEST(DbCache, KeepsABoundedNumberOfDatabases) {
  TempDir dir;
  for (size_t i = 0; i < kMaxDbCacheEntries + 3; ++i) {
    auto rs = parse_rules(
        "[[rules]]\nid = \"a\"\nregex = '''aa_[0-9]{" + std::to_string(20 + i) + "}'''\n",
        "r.toml");
    ASSERT_TRUE(rs.ok());
    ASSERT_TRUE(Detector::create(std::move(*rs), dir.str()).ok());
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.path().extension() == ".db";
  EXPECT_EQ(files, kMaxDbCacheEntries);
}

TEST(DbCache, ScanPathUsesTheCacheDirAndFindsTheSame) {
  TempDir tree;
  tree.write("a/deploy.sh", "export GITHUB_TOKEN=" + cache_test_token() + "\n");
  TempDir cache;
  ScanOptions opts;
  opts.config_path = tree.write("rules.toml", "[[rules]]\nid = \"gh\"\nregex = '''gh" +
                                                  std::string("p_") + "[0-9a-zA-Z]{36}'''\n");
  opts.db_cache_dir = cache.str();
  opts.threads = 2;
  auto r1 = scan_path(tree.str(), opts);
  ASSERT_TRUE(r1.ok()) << r1.status().to_string();
  only_cache_db(cache.path());
  auto r2 = scan_path(tree.str(), opts);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r1->findings.size(), 1u);
  ASSERT_EQ(r2->findings.size(), 1u);
  EXPECT_EQ(r1->findings[0].secret, r2->findings[0].secret);
}

}  // namespace
}  // namespace ferry::scan
