// The keyed audit chain through the API (issue 13, item 4): the head is served and logged,
// `expect_head` catches a truncated log, a rewritten entry is caught even when its hash
// was recomputed, and an unkeyed chain is re-sealed (audited) on the first keyed start.
#include <sqlite3.h>

#include "common/crypto.h"
#include "governance/audit_chain.h"
#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

class AuditHeadTest : public ServerFixture {
 protected:
  void raw_sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "ferry.db").c_str(), &db), SQLITE_OK);
    // The running server may hold a write transaction for a moment (a loaded machine).
    sqlite3_busy_timeout(db, 30'000);
    std::vector<std::string> triggers;
    sqlite3_exec(
        db, "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit'",
        [](void* out, int, char** cols, char**) {
          static_cast<std::vector<std::string>*>(out)->push_back(cols[0]);
          return 0;
        },
        &triggers, nullptr);
    for (const auto& t : triggers) sqlite3_exec(db, ("DROP TRIGGER " + t).c_str(), 0, 0, 0);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(db);
  }
};

TEST_F(AuditHeadTest, TheHeadIsServedAndATruncatedLogFailsAgainstIt) {
  start("  dev: {}\n");
  for (const char* v : {"v1", "v2", "v3"}) release(v);
  Json head = ok_json(admin_, "GET", "/api/v1/audit/head");
  const int64_t seq = head.value("seq", int64_t{0});
  ASSERT_GE(seq, 4);
  const std::string exported = head.value("head", "");
  EXPECT_EQ(exported, std::to_string(seq) + ":" + head.value("hash", ""));
  Json v = ok_json(admin_, "GET", "/api/v1/audit/verify?expect_head=" + exported);
  EXPECT_TRUE(v.value("ok", false)) << v.dump();
  EXPECT_EQ(v.value("last_seq", int64_t{0}), seq);
  EXPECT_EQ(v.value("last_hash", ""), head.value("hash", ""));
  // The last two entries removed: the shorter chain is valid in itself…
  raw_sql("DELETE FROM audit WHERE seq >= " + std::to_string(seq - 1));
  v = ok_json(admin_, "GET", "/api/v1/audit/verify");
  EXPECT_TRUE(v.value("ok", false)) << v.dump();
  // …but not against the head kept elsewhere.
  v = ok_json(admin_, "GET", "/api/v1/audit/verify?expect_head=" + exported);
  EXPECT_FALSE(v.value("ok", true)) << v.dump();
  EXPECT_NE(v.value("reason", "").find("truncated"), std::string::npos) << v.dump();
  // A malformed head is a 400 naming the format.
  auto r = call(admin_, "GET", "/api/v1/audit/verify?expect_head=12");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("SEQ:HASH"), std::string::npos) << r->body;
}

TEST_F(AuditHeadTest, AnEntryRewrittenWithARecomputedShaChainIsCaught) {
  start("  dev: {}\n");
  release("v1");
  release("v2");
  // The attacker edits entry 2 and recomputes every hash after it the old way.
  auto all = cp_->store().list_audit(0, 100);
  ASSERT_TRUE(all.ok());
  std::vector<AuditRecord> c = *all;
  c[1].actor = "token:mallory";
  std::string sql;
  for (size_t i = 1; i < c.size(); ++i) {
    c[i].prev_hash = c[i - 1].hash;
    seal_audit_record(c[i]);
    sql += "UPDATE audit SET actor='" + c[i].actor + "', prev_hash='" + c[i].prev_hash +
           "', hash='" + c[i].hash + "' WHERE seq=" + std::to_string(c[i].seq) + ";";
  }
  raw_sql(sql);
  Json v = ok_json(admin_, "GET", "/api/v1/audit/verify");
  EXPECT_FALSE(v.value("ok", true)) << v.dump();
  EXPECT_EQ(v.value("first_bad_seq", 0), 2) << v.dump();
}

TEST_F(AuditHeadTest, AnUnkeyedChainIsResealedOnceByAMarkedAuditedEntry) {
  // A store from before the key: three entries sealed with plain SHA-256.
  std::string v1_head;
  before_start_ = [&] {
    auto s = open_store("sqlite:" + (dir_ / "ferry.db").string());
    ASSERT_TRUE(s.ok());
    for (int i = 1; i <= 3; ++i) {
      AuditRecord a;
      a.time_ms = i;
      a.actor = "token:old";
      a.action = "release.create";
      auto r = (*s)->append_audit(a, seal_audit_record);
      ASSERT_TRUE(r.ok());
      v1_head = r->hash;
    }
  };
  start("  dev: {}\n");
  EXPECT_TRUE(std::filesystem::exists(dir_ / "data" / "audit.key"));
  auto all = cp_->store().list_audit(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_GE(all->size(), 4u);
  const AuditRecord& reseal = (*all)[3];
  EXPECT_EQ(reseal.action, kAuditResealAction);
  EXPECT_EQ(reseal.prev_hash, v1_head);
  EXPECT_EQ(reseal.details.value("resealed_entries", 0), 3);
  Json v = ok_json(admin_, "GET", "/api/v1/audit/verify");
  EXPECT_TRUE(v.value("ok", false)) << v.dump();
  EXPECT_EQ(v.value("unkeyed_entries", 0), 3);
  // A restart (key present) does not re-seal again.
  cp_->stop();
  cp_.reset();
  ServerOptions o;
  o.config_path = (dir_ / "ferry.yaml").string();
  o.local_agent = false;
  o.listen = "127.0.0.1:0";
  o.log_file = (dir_ / "server.log").string();
  auto again = ControlPlane::create(o);
  ASSERT_TRUE(again.ok()) << again.status().message();
  int reseals = 0;
  auto entries = (*again)->store().list_audit(0, 100);
  ASSERT_TRUE(entries.ok());
  for (const auto& a : *entries) reseals += a.action == kAuditResealAction;
  EXPECT_EQ(reseals, 1);
}

TEST_F(AuditHeadTest, TheHeadIsLoggedPeriodically) {
  tweak_options_ = [](ServerOptions& o) { o.audit_head_log_ms = 50; };
  start("  dev: {}\n");
  release("v1");
  const std::string head = ok_json(admin_, "GET", "/api/v1/audit/head").value("hash", "");
  bool logged = false;
  for (int i = 0; i < 100 && !logged; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::ifstream f(dir_ / "server.log");
    const std::string log((std::istreambuf_iterator<char>(f)), {});
    logged = log.find("audit head") != std::string::npos && log.find(head) != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace ferry::testing
