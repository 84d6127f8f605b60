// `ferry store copy`: a SQLite store moves to PostgreSQL whole, verified; the destination
// goes on where the source stopped (event seqs, the audit chain).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "governance/audit_chain.h"
#include "store/copy.h"
#include "store/pg_cluster.h"
#include "store/store.h"
#include "test_paths.h"
#include "test_skip.h"

namespace ferry {
namespace {

class StoreCopy : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    pg_ = testing::shared_pg_cluster(&why);
    if (!pg_) FERRY_SKIP_OR_FAIL("PostgreSQL cannot run here: " << why);
    db_ = "c_" + random_id("", 8);
    ASSERT_TRUE(pg_->create_database(db_).ok());
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-copy-");
    src_url_ = "sqlite:" + (dir_ / "ferry.db").string();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (pg_ && !db_.empty()) (void)pg_->drop_database(db_);
  }
  static void seal(AuditRecord& a) { a.hash = sha256_hex(a.prev_hash + a.action + a.actor); }

  void fill_source() {
    auto s = open_store(src_url_);
    ASSERT_TRUE(s.ok());
    Store& st = **s;
    for (const char* v : {"v1", "v2"})
      ASSERT_TRUE(st.create_release({.app = "web",
                                     .version = v,
                                     .git_sha = "abc",
                                     .config = {{"port", 8080}},
                                     .created_at_ms = 5})
                      .ok());
    DeploymentRecord d{.id = "d-1",
                       .app = "web",
                       .env = "dev",
                       .release = "v1",
                       .strategy = "canary",
                       .created_at_ms = 6,
                       .updated_at_ms = 6};
    ASSERT_TRUE(st.create_deployment(d, {.time_ms = 6, .type = EventType::kCreated}).ok());
    d.version = 1;
    d.state = DeploymentState::kSucceeded;
    ASSERT_TRUE(st.update_deployment(
                      d, {{.type = EventType::kStepFinished, .step = 0, .data = {{"weight", 100}}}})
                    .ok());
    DeploymentRecord d2{.id = "d-2",
                        .app = "web",
                        .env = "dev",
                        .release = "v2",
                        .strategy = "canary",
                        .created_at_ms = 7,
                        .updated_at_ms = 7};
    ASSERT_TRUE(st.create_deployment(d2, {.type = EventType::kCreated}).ok());
    ASSERT_TRUE(st.set_env_release({"web", "dev", "v1", "d-1", 8}).ok());
    ASSERT_TRUE(st.create_token({.id = "t1",
                                 .name = "ci",
                                 .hash = "h",
                                 .role = "admin",
                                 .envs = {"dev", "prod"},
                                 .revoked = true})
                    .ok());
    ASSERT_TRUE(st.add_approval({"web", "prod", "v2", "bob", "ok", 9}).ok());
    ASSERT_TRUE(st.put_secret({"web", "dev", "DB_PASSWORD", "00ffcafe", 9, "alice"}).ok());
    for (const char* action : {"release.create", "deploy", "approve"})
      ASSERT_TRUE(
          st.append_audit(
                {.time_ms = 10, .actor = "alice", .action = action, .details = {{"k", "ü"}}}, seal)
              .ok());
  }

  testing::PgCluster* pg_ = nullptr;
  std::string db_;
  std::filesystem::path dir_;
  std::string src_url_;
};

TEST_F(StoreCopy, CopiesEveryTableVerifiesAndTheDestinationGoesOn) {
  fill_source();
  auto r = copy_store(src_url_, pg_->url(db_));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->rows.at("releases"), 2);
  EXPECT_EQ(r->rows.at("deployments"), 2);
  EXPECT_EQ(r->rows.at("deployment_events"), 3);
  EXPECT_EQ(r->rows.at("tokens"), 1);
  EXPECT_EQ(r->rows.at("audit"), 3);
  EXPECT_EQ(r->rows.at("approvals"), 1);
  EXPECT_EQ(r->rows.at("secrets"), 1);
  EXPECT_EQ(r->rows.at("release_successes"), 1);
  EXPECT_EQ(r->audit_entries, 3);

  auto src = open_store(src_url_);
  auto dst = open_store(pg_->url(db_));
  ASSERT_TRUE(src.ok() && dst.ok());
  auto sd = (*src)->list_deployments({});
  auto dd = (*dst)->list_deployments({});
  ASSERT_EQ(sd->size(), dd->size());
  for (size_t i = 0; i < sd->size(); ++i) {
    EXPECT_EQ((*sd)[i].id, (*dd)[i].id);
    EXPECT_EQ((*sd)[i].state, (*dd)[i].state);
    EXPECT_EQ((*sd)[i].version, (*dd)[i].version);
  }
  auto se = (*src)->list_events("", 0, 100);
  auto de = (*dst)->list_events("", 0, 100);
  ASSERT_EQ(se->size(), de->size());
  for (size_t i = 0; i < se->size(); ++i) {
    EXPECT_EQ((*se)[i].seq, (*de)[i].seq);
    EXPECT_EQ((*se)[i].type, (*de)[i].type);
    EXPECT_EQ((*se)[i].data, (*de)[i].data);
  }
  auto t = (*dst)->get_token("t1");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->revoked);
  EXPECT_EQ(t->envs, (std::vector<std::string>{"dev", "prod"}));
  EXPECT_EQ((*dst)->list_secrets("web", "dev")->at(0).ciphertext, "00ffcafe");
  EXPECT_TRUE(*(*dst)->release_succeeded_in("web", "v1", "dev"));
  EXPECT_EQ((*dst)->get_release("web", "v1")->config["port"], 8080);
  auto sa = (*src)->list_audit(0, 10);
  auto da = (*dst)->list_audit(0, 10);
  ASSERT_EQ(da->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*sa)[i].hash, (*da)[i].hash);
    EXPECT_EQ((*sa)[i].details, (*da)[i].details);
  }
  // The one-in-progress rule came along: d-2 is still in progress at the destination.
  EXPECT_EQ((*dst)
                ->create_deployment({.id = "d-3", .app = "web", .env = "dev", .release = "v2"},
                                    {.type = EventType::kCreated})
                .code(),
            Code::kFailedPrecondition);
  // New events and audit entries continue after the copied ones.
  auto seq = (*dst)->append_event({.deployment_id = "d-2", .type = EventType::kCommand});
  ASSERT_TRUE(seq.ok()) << seq.status().to_string();
  EXPECT_GT(*seq, se->back().seq);
  auto next = (*dst)->append_audit({.actor = "bob", .action = "abort"}, seal);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 4);
  EXPECT_EQ(next->prev_hash, da->back().hash);
}

// Back again: a PostgreSQL store into a new SQLite file (what `ferry backup` of a
// PostgreSQL store holds) gives every row back, the audit chain, and a store that goes on.
TEST_F(StoreCopy, APostgresStoreCopiesBackIntoANewSqliteFileWhole) {
  fill_source();
  ASSERT_TRUE(copy_store(src_url_, pg_->url(db_)).ok());
  const std::string back = "sqlite:" + (dir_ / "back.db").string();
  auto r = copy_store(pg_->url(db_), back);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->rows.at("deployment_events"), 3);
  EXPECT_EQ(r->audit_entries, 3);
  auto src = open_store(src_url_);
  auto dst = open_store(back);
  ASSERT_TRUE(src.ok() && dst.ok());
  auto se = (*src)->list_events("", 0, 100);
  auto de = (*dst)->list_events("", 0, 100);
  ASSERT_EQ(se->size(), de->size());
  for (size_t i = 0; i < se->size(); ++i) {
    EXPECT_EQ((*se)[i].seq, (*de)[i].seq);
    EXPECT_EQ((*se)[i].data, (*de)[i].data);
  }
  auto t = (*dst)->get_token("t1");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->revoked);  // PostgreSQL's BOOLEAN comes back as SQLite's 1
  EXPECT_EQ(t->envs, (std::vector<std::string>{"dev", "prod"}));
  EXPECT_EQ((*dst)->list_secrets("web", "dev")->at(0).ciphertext, "00ffcafe");
  EXPECT_EQ((*dst)->get_deployment("d-1")->state, DeploymentState::kSucceeded);
  auto sa = (*src)->list_audit(0, 10);
  auto da = (*dst)->list_audit(0, 10);
  ASSERT_EQ(da->size(), 3u);
  EXPECT_EQ((*sa)[2].hash, (*da)[2].hash);
  auto seq = (*dst)->append_event({.deployment_id = "d-2", .type = EventType::kCommand});
  ASSERT_TRUE(seq.ok());
  EXPECT_GT(*seq, se->back().seq);
  // Never over an existing file, never between two stores of one kind.
  auto again = copy_store(pg_->url(db_), back);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos);
  EXPECT_EQ(copy_store(pg_->url(db_), pg_->url(db_)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(copy_store(src_url_, back).status().code(), Code::kInvalidArgument);
}

TEST_F(StoreCopy, RefusesADestinationThatHoldsDataAndChangesNothing) {
  fill_source();
  ASSERT_TRUE(copy_store(src_url_, pg_->url(db_)).ok());
  auto again = copy_store(src_url_, pg_->url(db_));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("empty"), std::string::npos);
  auto dst = open_store(pg_->url(db_));
  EXPECT_EQ((*dst)->list_audit(0, 100)->size(), 3u);
}

TEST_F(StoreCopy, RefusesAMissingSourceAndWrongKindsOfURL) {
  auto missing = copy_store("sqlite:" + (dir_ / "nope.db").string(), pg_->url(db_));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "nope.db"));
  EXPECT_EQ(copy_store(pg_->url(db_), "mysql://x/y").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(copy_store(src_url_, "sqlite:/tmp/x.db").status().code(), Code::kInvalidArgument);
  auto bad = copy_store(src_url_, "postgres://u:s3cretpw@127.0.0.1:notaport/x");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("s3cretpw"), std::string::npos);
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// The command itself: exit 0 and the verified counts; a second copy into the same
// database exits 2 and says why. Runs the ferry binary of this build (tests/test_paths.h).
TEST_F(StoreCopy, TheCommandCopiesVerifiesAndRefusesToMerge) {
  const std::string bin = testing::ferry_binary();
  fill_source();
  const std::string out = (dir_ / "out.json").string();
  const std::string cmd =
      bin + " --json store copy " + src_url_ + " " + pg_->url(db_) + " > " + out + " 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  std::ifstream f(out);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  ASSERT_EQ(WEXITSTATUS(rc), 0) << text;
  auto j = Json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << text;
  EXPECT_TRUE(j.value("ok", false));
  EXPECT_EQ(j["rows"]["audit"], 3);
  EXPECT_EQ(j["audit_entries"], 3);
  rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  std::ifstream f2(out);
  std::string again((std::istreambuf_iterator<char>(f2)), {});
  EXPECT_NE(again.find("empty"), std::string::npos) << again;
}

// `ferry store check` on a damaged PostgreSQL store tells the PostgreSQL way to restore
// it, not how to swap a SQLite file and its -wal.
TEST_F(StoreCopy, StoreCheckOnADamagedPostgresStoreGivesPostgresRestoreSteps) {
  const char* bin = std::getenv("FERRY_BIN");
  if (!bin || !std::filesystem::exists(bin)) GTEST_SKIP() << "FERRY_BIN is not built";
  ASSERT_TRUE(open_store(pg_->url(db_)).ok());
  ASSERT_TRUE(pg_->sql("ALTER TABLE deployment_events DROP CONSTRAINT "
                       "deployment_events_deployment_id_fkey",
                       db_)
                  .ok());
  ASSERT_TRUE(pg_->sql("INSERT INTO deployment_events (deployment_id, time_ms, type) VALUES "
                       "('gone', 1, 'created')",
                       db_)
                  .ok());
  std::filesystem::create_directories(dir_);
  const std::string out = (dir_ / "check.txt").string();
  const int rc = std::system(
      (std::string(bin) + " store check --store " + pg_->url(db_) + " > " + out + " 2>&1").c_str());
  std::ifstream f(out);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1) << text;
  EXPECT_NE(text.find("belong to no deployment"), std::string::npos) << text;
  EXPECT_NE(text.find("pg_restore"), std::string::npos) << text;
  EXPECT_EQ(text.find("-wal"), std::string::npos) << text;
  EXPECT_EQ(text.find("ferry backup restore"), std::string::npos) << text;
}

// `--audit-key-file`: every copied entry's HMAC is checked with the server's key. The
// right key passes; another key is a verification failure (exit 1); a missing or
// malformed key file is an error before anything is copied (exit 2, destination empty).
TEST_F(StoreCopy, TheCommandChecksEveryHmacWithTheAuditKeyFile) {
  const char* bin = std::getenv("FERRY_BIN");
  if (!bin || !std::filesystem::exists(bin)) GTEST_SKIP() << "FERRY_BIN is not built";
  std::filesystem::create_directories(dir_);
  const std::string key(32, '\x5a');
  {
    auto s = open_store(src_url_);
    ASSERT_TRUE(s.ok());
    for (const char* action : {"release.create", "deploy", "approve", "token.create"})
      ASSERT_TRUE((*s)->append_audit({.time_ms = 10, .actor = "alice", .action = action},
                                     [&key](AuditRecord& a) { seal_audit_record_keyed(a, key); })
                      .ok());
  }
  auto write_file = [&](const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  };
  const std::string right = write_file("audit.key", key);
  const std::string wrong = write_file("other.key", std::string(32, '\x11'));
  const std::string short_key = write_file("short.key", "0123456789");
  const std::string out = (dir_ / "out.txt").string();
  auto copy = [&](const std::string& db, const std::string& key_file, std::string* text) {
    const std::string cmd = std::string(bin) + " --json store copy " + src_url_ + " " +
                            pg_->url(db) + " --audit-key-file " + key_file + " > " + out + " 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream f(out);
    text->assign((std::istreambuf_iterator<char>(f)), {});
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  auto audit_rows = [&](const std::string& db) {
    auto st = open_store(pg_->url(db));
    if (!st.ok()) return int64_t{-1};
    auto h = (*st)->audit_head();
    return h.ok() ? h->seq : int64_t{-1};
  };

  // Malformed and missing key files: refused first, nothing copied.
  std::string text;
  EXPECT_EQ(copy(db_, short_key, &text), 2) << text;
  EXPECT_NE(text.find("32 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("nothing was copied"), std::string::npos) << text;
  EXPECT_EQ(copy(db_, (dir_ / "missing.key").string(), &text), 2) << text;
  EXPECT_NE(text.find("does not exist"), std::string::npos) << text;
  EXPECT_EQ(audit_rows(db_), 0);

  // The right key: copied, and every HMAC verified.
  ASSERT_EQ(copy(db_, right, &text), 0) << text;
  auto j = Json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << text;
  EXPECT_TRUE(j.value("ok", false)) << text;
  EXPECT_TRUE(j["audit_key"].value("ok", false)) << text;
  EXPECT_EQ(j["audit_key"].value("checked", 0), 4) << text;

  // Another key: the links still hold, but no HMAC matches: exit 1, entry 1 named.
  const std::string db2 = db_ + "_w";
  ASSERT_TRUE(pg_->create_database(db2).ok());
  EXPECT_EQ(copy(db2, wrong, &text), 1) << text;
  auto w = Json::parse(text, nullptr, false);
  ASSERT_FALSE(w.is_discarded()) << text;
  EXPECT_FALSE(w.value("ok", true));
  EXPECT_FALSE(w["audit_key"].value("ok", true));
  EXPECT_EQ(w["audit_key"].value("bad_seq", 0), 1) << text;
  (void)pg_->drop_database(db2);
}

}  // namespace
}  // namespace ferry
