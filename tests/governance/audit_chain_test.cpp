#include "governance/audit_chain.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>

#include "common/crypto.h"
#include "store/store.h"

namespace ferry {
namespace {

AuditRecord entry(int i) {
  AuditRecord a;
  a.time_ms = 1'800'000'000'000 + i * 1000;
  a.actor = i % 2 ? "alice" : "bob";
  a.action = "deploy.start";
  a.app = "web";
  a.env = "production";
  a.release = "v" + std::to_string(i);
  a.git_sha = "abc" + std::to_string(i);
  a.source_addr = "127.0.0.1";
  a.details = {{"step", i}, {"note", "héllo ✓"}, {"ratio", 0.1 * i}, {"nested", {{"b", 1}, {"a", {1, 2}}}}};
  return a;
}

// A chain built the way Store::append_audit builds it.
std::vector<AuditRecord> chain(int n) {
  std::vector<AuditRecord> out;
  for (int i = 1; i <= n; ++i) {
    AuditRecord a = entry(i);
    a.seq = i;
    a.prev_hash = out.empty() ? audit_genesis_hash() : out.back().hash;
    seal_audit_record(a);
    out.push_back(a);
  }
  return out;
}

TEST(AuditChain, ValidChainVerifies) {
  const auto c = chain(6);
  const AuditVerify v = verify_audit_chain(c);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.checked, 6);
  EXPECT_EQ(v.last_seq, 6);
  EXPECT_EQ(v.last_hash, c.back().hash);
  EXPECT_TRUE(verify_audit_chain({}).ok);
  EXPECT_EQ(c[0].prev_hash, std::string(64, '0'));
}

TEST(AuditChain, CanonicalFormIsStable) {
  // Changing the canonical form would break every stored chain: this pins it.
  AuditRecord a = entry(1);
  a.seq = 1;
  a.prev_hash = audit_genesis_hash();
  EXPECT_EQ(canonical_audit(a).substr(0, 37), "ferry-audit-v1\nseq=1:1\ntime_ms=13:180");
  EXPECT_NE(canonical_audit(a).find("details=76:{\"nested\":{\"a\":[1,2],\"b\":1},\"note\":\"h\\u00e9llo \\u2713\""),
            std::string::npos)
      << canonical_audit(a);
  EXPECT_EQ(audit_hash(a), sha256_hex(a.prev_hash + canonical_audit(a)));
  // A golden vector, computed independently (Python hashlib) from the documented form.
  AuditRecord g;
  g.seq = 7;
  g.time_ms = 1'800'000'000'000;
  g.actor = "alice";
  g.action = "deploy.start";
  g.app = "web";
  g.env = "production";
  g.release = "v3";
  g.git_sha = "abc";
  g.source_addr = "127.0.0.1";
  g.details = {{"b", 1}, {"a", "x"}};
  g.prev_hash = audit_genesis_hash();
  EXPECT_EQ(canonical_audit(g),
            "ferry-audit-v1\nseq=1:7\ntime_ms=13:1800000000000\nactor=5:alice\naction=12:deploy.start\n"
            "app=3:web\nenv=10:production\nrelease=2:v3\ngit_sha=3:abc\nsource_addr=9:127.0.0.1\n"
            "details=15:{\"a\":\"x\",\"b\":1}\n");
  EXPECT_EQ(audit_hash(g), "e8a5117b1651826f3d7ebcc07c0e44be35dc34cf87443348f5ac259d455912ce");
  // Field boundaries cannot be shifted without changing the hash.
  AuditRecord b = a, c = a;
  b.actor = "ab";
  b.action = "c";
  c.actor = "a";
  c.action = "bc";
  EXPECT_NE(audit_hash(b), audit_hash(c));
}

TEST(AuditChain, EveryTamperedFieldIsReportedAtItsEntry) {
  const std::vector<std::pair<std::string, std::function<void(AuditRecord&)>>> edits = {
      {"time_ms", [](AuditRecord& a) { a.time_ms += 1; }},
      {"actor", [](AuditRecord& a) { a.actor = "mallory"; }},
      {"action", [](AuditRecord& a) { a.action = "deploy.approve"; }},
      {"app", [](AuditRecord& a) { a.app = "api"; }},
      {"env", [](AuditRecord& a) { a.env = "staging"; }},
      {"release", [](AuditRecord& a) { a.release = "v99"; }},
      {"git_sha", [](AuditRecord& a) { a.git_sha = "fff"; }},
      {"source_addr", [](AuditRecord& a) { a.source_addr = "10.0.0.9"; }},
      {"details", [](AuditRecord& a) { a.details["step"] = 42; }},
      {"details key", [](AuditRecord& a) { a.details["extra"] = true; }},
      {"prev_hash", [](AuditRecord& a) { a.prev_hash[0] = a.prev_hash[0] == 'a' ? 'b' : 'a'; }},
      {"hash", [](AuditRecord& a) { a.hash[5] = a.hash[5] == 'a' ? 'b' : 'a'; }},
      {"seq", [](AuditRecord& a) { a.seq = 40; }},
  };
  for (const auto& [name, edit] : edits) {
    auto c = chain(6);
    edit(c[3]);
    const AuditVerify v = verify_audit_chain(c);
    EXPECT_FALSE(v.ok) << name;
    EXPECT_EQ(v.bad_index, 3u) << name;
    EXPECT_EQ(v.bad_seq, name == "seq" ? 40 : 4) << name;
    EXPECT_EQ(v.checked, 3) << name;
    EXPECT_EQ(v.last_seq, 3) << name;
    EXPECT_FALSE(v.reason.empty());
  }
}

TEST(AuditChain, RehashedEditBreaksTheNextLink) {
  auto c = chain(6);
  c[2].actor = "mallory";
  seal_audit_record(c[2]);  // an attacker who recomputes this hash
  const AuditVerify v = verify_audit_chain(c);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 4);
  EXPECT_NE(v.reason.find("does not link to entry 3"), std::string::npos) << v.reason;
}

TEST(AuditChain, DeletedReorderedAndInsertedEntriesAreDetected) {
  auto deleted = chain(6);
  deleted.erase(deleted.begin() + 2);
  AuditVerify v = verify_audit_chain(deleted);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 4);
  EXPECT_NE(v.reason.find("entries 3 to 3 are missing"), std::string::npos) << v.reason;

  auto first_gone = chain(3);
  first_gone.erase(first_gone.begin());
  EXPECT_EQ(verify_audit_chain(first_gone).bad_seq, 2);

  auto reordered = chain(6);
  std::swap(reordered[2], reordered[3]);
  v = verify_audit_chain(reordered);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_index, 2u);

  // Renumbering after a deletion, re-hashing each: the link still breaks.
  auto renumbered = chain(6);
  renumbered.erase(renumbered.begin() + 2);
  for (size_t i = 2; i < renumbered.size(); ++i) {
    renumbered[i].seq = static_cast<int64_t>(i) + 1;
    seal_audit_record(renumbered[i]);
  }
  v = verify_audit_chain(renumbered);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3);
}

TEST(AuditChain, VerifiesPageByPageFromAnAnchor) {
  const auto c = chain(7);
  AuditChainVerifier first;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(first.add(c[i]));
  AuditChainVerifier rest(first.result().last_seq, first.result().last_hash);
  for (int i = 3; i < 7; ++i) ASSERT_TRUE(rest.add(c[i]));
  EXPECT_EQ(rest.result().last_seq, 7);
  AuditChainVerifier wrong_anchor(3, c[1].hash);
  EXPECT_FALSE(wrong_anchor.add(c[3]));
  EXPECT_FALSE(wrong_anchor.add(c[4]));  // stays broken
}

class AuditStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-audit-");
    path_ = (dir_ / "ferry.db").string();
    auto s = open_store("sqlite:" + path_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
    for (int i = 1; i <= 5; ++i) {
      auto r = store_->append_audit(entry(i), seal_audit_record);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
    }
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  AuditVerify verify() {
    auto list = store_->list_audit(0, 1000);
    EXPECT_TRUE(list.ok());
    return verify_audit_chain(*list);
  }
  // The attacker: raw SQL on the database file, bypassing the store.
  int raw_sql(const std::string& sql, std::string* error = nullptr) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* msg = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
    if (error && msg) *error = msg;
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditStoreTest, StoredChainVerifies) {
  const AuditVerify v = verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.checked, 5);
}

TEST_F(AuditStoreTest, TriggersRefuseUpdates) {
  std::string error;
  EXPECT_NE(raw_sql("UPDATE audit SET actor = 'mallory' WHERE seq = 3", &error), SQLITE_OK);
  EXPECT_NE(error.find("append-only"), std::string::npos) << error;
  EXPECT_TRUE(verify().ok);
}

TEST_F(AuditStoreTest, DetectsARowEditedBehindTheStoresBack) {
  ASSERT_EQ(raw_sql("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 3"), SQLITE_OK);
  const AuditVerify v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3);
  EXPECT_NE(v.reason.find("altered"), std::string::npos) << v.reason;
}

TEST_F(AuditStoreTest, DetectsAnEditedDetailsColumn) {
  ASSERT_EQ(raw_sql("DROP TRIGGER audit_no_update; "
                    "UPDATE audit SET details = '{\"step\":2,\"note\":\"x\"}' WHERE seq = 2"),
            SQLITE_OK);
  EXPECT_EQ(verify().bad_seq, 2);
}

TEST_F(AuditStoreTest, DetectsADeletedRow) {
  ASSERT_EQ(raw_sql("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2"), SQLITE_OK);
  const AuditVerify v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3);
  // The store keeps appending after the gap; the break stays where it was.
  ASSERT_TRUE(store_->append_audit(entry(6), seal_audit_record).ok());
  EXPECT_EQ(verify().bad_seq, 3);
}

}  // namespace
}  // namespace ferry
