// The keyed audit chain (issue 13, item 4): HMAC-SHA-256 with a key outside the store,
// migration of an unkeyed chain by a re-seal entry, streaming verification, the exported
// head and truncation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/crypto.h"
#include "governance/audit_chain.h"

namespace ferry {
namespace {

const std::string kKey(32, 'k');

AuditRecord keyed_entry(int i, const std::string& action = "deployment.create") {
  AuditRecord a;
  a.time_ms = 1'800'000'000'000 + i * 1000;
  a.actor = "token:alice";
  a.action = action;
  a.app = "web";
  a.env = "production";
  a.release = "v" + std::to_string(i);
  a.details = {{"i", i}};
  return a;
}

// Appends like Store::append_audit: seq, prev_hash, then the seal.
void append(std::vector<AuditRecord>& c, AuditRecord a, bool keyed, const std::string& key = kKey) {
  a.seq = static_cast<int64_t>(c.size()) + 1;
  a.prev_hash = c.empty() ? audit_genesis_hash() : c.back().hash;
  if (keyed)
    seal_audit_record_keyed(a, key);
  else
    seal_audit_record(a);
  c.push_back(a);
}

AuditVerify verify(const std::vector<AuditRecord>& c, const std::string& key = kKey) {
  KeyedAuditVerifier v(key);
  for (const auto& a : c)
    if (!v.add(a)) break;
  return v.finish();
}

std::vector<AuditRecord> keyed_chain(int n) {
  std::vector<AuditRecord> c;
  for (int i = 1; i <= n; ++i) append(c, keyed_entry(i), true);
  return c;
}

TEST(KeyedAudit, AKeyedChainVerifiesAndReportsItsHead) {
  auto c = keyed_chain(5);
  const AuditVerify v = verify(c);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.last_seq, 5);
  EXPECT_EQ(v.last_hash, c.back().hash);
  EXPECT_EQ(c[0].hash, hmac_sha256_hex(kKey, c[0].prev_hash + canonical_audit(c[0]).replace(
                                                                  0, 15, "ferry-audit-v2\n")));
}

TEST(KeyedAudit, WhoeverCanWriteTheStoreButNotReadTheKeyCannotRecomputeIt) {
  // Edit entry 3 and recompute every hash from there on: with SHA-256 (the old chain),
  // or with a guessed key. Both are caught at entry 3.
  for (int how = 0; how < 2; ++how) {
    auto c = keyed_chain(5);
    c[2].actor = "token:mallory";
    for (size_t i = 2; i < c.size(); ++i) {
      c[i].prev_hash = c[i - 1].hash;
      if (how == 0)
        seal_audit_record(c[i]);
      else
        seal_audit_record_keyed(c[i], std::string(32, 'x'));
    }
    const AuditVerify v = verify(c);
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.bad_seq, 3) << v.reason;
  }
  // The whole log rewritten as an unkeyed chain: nothing covers it.
  std::vector<AuditRecord> forged;
  for (int i = 1; i <= 4; ++i) append(forged, keyed_entry(i), false);
  const AuditVerify v = verify(forged);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 1);
  EXPECT_NE(v.reason.find("not sealed with the audit key"), std::string::npos) << v.reason;
}

TEST(KeyedAudit, AnUnkeyedChainMigratesThroughAMarkedResealEntry) {
  std::vector<AuditRecord> c;
  for (int i = 1; i <= 3; ++i) append(c, keyed_entry(i), false);  // written before the key
  append(c, keyed_entry(4, kAuditResealAction), true);
  append(c, keyed_entry(5), true);
  KeyedAuditVerifier v(kKey);
  for (const auto& a : c) ASSERT_TRUE(v.add(a)) << v.result().reason;
  EXPECT_TRUE(v.finish().ok);
  EXPECT_EQ(v.v1_entries(), 3);
  // An edit of an old entry is still caught: the re-seal entry links to the old head.
  auto edited = c;
  edited[1].actor = "token:mallory";
  seal_audit_record(edited[1]);
  edited[2].prev_hash = edited[1].hash;
  seal_audit_record(edited[2]);
  EXPECT_EQ(verify(edited).bad_seq, 4);
  // Keyed entries after old ones without the re-seal entry: refused.
  std::vector<AuditRecord> no_reseal;
  for (int i = 1; i <= 2; ++i) append(no_reseal, keyed_entry(i), false);
  append(no_reseal, keyed_entry(3), true);
  EXPECT_EQ(verify(no_reseal).bad_seq, 3);
  // An unkeyed entry after keyed ones: refused.
  auto late = c;
  append(late, keyed_entry(6), false);
  EXPECT_EQ(verify(late).bad_seq, 6);
}

TEST(KeyedAudit, TruncationIsCaughtOnlyAgainstAnExportedHead) {
  auto c = keyed_chain(6);
  const std::string head = "5:" + c[4].hash;
  auto expected = parse_audit_head(head);
  ASSERT_TRUE(expected.ok());
  // Intact: the entry at the exported seq has the exported hash.
  AuditVerify v = verify(c);
  EXPECT_TRUE(check_expected_head(v, 5, expected->second, c[4].hash).ok());
  // Entries 4-6 removed: the rest is a valid chain, but the head is gone.
  c.resize(3);
  v = verify(c);
  EXPECT_TRUE(v.ok);
  Status s = check_expected_head(v, expected->first, expected->second, "");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  // A different entry at that seq (rewritten log).
  EXPECT_FALSE(
      check_expected_head(verify(keyed_chain(6)), 5, expected->second, std::string(64, 'a')).ok());
  for (const char* bad : {"", "5", "5:abc", "x:", "-1:0000", "5:zz"})
    EXPECT_FALSE(parse_audit_head(bad).ok()) << bad;
  EXPECT_FALSE(parse_audit_head("0:" + std::string(64, 'a')).ok());
}

TEST(KeyedAudit, TheKeyFileIsMadeOnce0600AndRefusedWhenOthersCanReadIt) {
  const auto dir = std::filesystem::temp_directory_path() / random_id("ferry-audit-key-");
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "audit.key").string();
  bool created = false;
  auto k1 = load_or_create_audit_key(path, &created);
  ASSERT_TRUE(k1.ok()) << k1.status().message();
  EXPECT_TRUE(created);
  EXPECT_EQ(k1->size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k2 = load_or_create_audit_key(path, &created);
  ASSERT_TRUE(k2.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(*k1, *k2);
  ::chmod(path.c_str(), 0644);
  EXPECT_FALSE(load_or_create_audit_key(path, &created).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
