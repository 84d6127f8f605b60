// Backups: an online copy that verifies (checksums, counts, audit chain, secrets), that
// restores only over a stopped server, that drills, and that refuses what was tampered with.
#include "ops/backup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/crypto.h"
#include "governance/audit_chain.h"
#include "governance/secret_box.h"
#include "ops/backup_scheduler.h"
#include "store/pg_cluster.h"
#include "store/store.h"
#include "test_skip.h"

namespace ferry::ops {
namespace {

namespace fs = std::filesystem;

class BackupFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ferry-backup-test-XXXXXX").string();
    root_ = ::mkdtemp(tmpl.data());
    server_.data_dir = root_ + "/data";
    server_.store = store_url();
    if (server_.store.empty()) return;  // skipped
    fs::create_directories(server_.data_dir);
    ASSERT_TRUE(SecretBox::create_key_file(server_.data_dir + "/secrets.key").ok());
    bool created = false;
    auto key = load_or_create_audit_key(server_.data_dir + "/audit.key", &created);
    ASSERT_TRUE(key.ok());
    audit_key_ = *key;
    auto store = open_store(server_.store);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(*store);
    auto box = SecretBox::from_key_file(server_.data_dir + "/secrets.key");
    ASSERT_TRUE(box.ok());
    for (int i = 0; i < 3; ++i) {
      SecretRecord s{"web", "prod", "KEY" + std::to_string(i), "", 1, "alice"};
      ASSERT_TRUE(seal_secret(*box, s, "value-" + std::to_string(i)).ok());
      ASSERT_TRUE(store_->put_secret(s).ok());
    }
    for (int i = 0; i < 20; ++i) add_audit("entry" + std::to_string(i));
    ReleaseRecord r;
    r.app = "web";
    r.version = "v1";
    r.created_at_ms = 1;
    ASSERT_TRUE(store_->create_release(r).ok());
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // The store the fixture's server uses: a SQLite file in its data directory.
  virtual std::string store_url() { return "sqlite:" + server_.data_dir + "/ferry.db"; }

  void add_audit(const std::string& action) {
    AuditRecord a;
    a.time_ms = 1;
    a.actor = "alice";
    a.action = action;
    auto r =
        store_->append_audit(a, [&](AuditRecord& e) { seal_audit_record_keyed(e, audit_key_); });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  BackupResult make(BackupOptions o = {}) {
    if (o.to_dir.empty()) o.to_dir = root_ + "/backups";
    auto r = create_backup(server_, o);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : BackupResult{};
  }

  // Makes `copies` backups while a thread appends up to `writes` audit entries, then checks
  // that each copy caught one moment: its chain is whole up to its own recorded head and the
  // audit table's row count is that head (no torn table).
  void expect_whole_copies_while_writing(int writes, int copies) {
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      for (int i = 0; i < writes && !stop; ++i) add_audit("busy" + std::to_string(i));
    });
    std::vector<BackupResult> made;
    for (int i = 0; i < copies; ++i) made.push_back(make());
    stop = true;
    writer.join();
    for (const auto& b : made) {
      const VerifyReport v = verify_backup(b.dir);
      EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems.front());
      EXPECT_EQ(v.audit_entries, b.manifest.audit_seq);
      EXPECT_EQ(b.manifest.counts.at("audit"), b.manifest.audit_seq);
    }
  }

  std::string root_;
  ServerSpec server_;
  std::string audit_key_;
  std::unique_ptr<Store> store_;
};

TEST_F(BackupFixture, ABackupHoldsTheStoreKeysAndAManifestThatVerifies) {
  const BackupResult b = make();
  ASSERT_FALSE(b.dir.empty());
  EXPECT_TRUE(fs::path(b.dir).filename().string().starts_with(kBackupPrefix));
  EXPECT_EQ(b.manifest.counts.at("secrets"), 3);
  EXPECT_EQ(b.manifest.counts.at("audit"), 20);
  EXPECT_EQ(b.manifest.counts.at("releases"), 1);
  EXPECT_EQ(b.manifest.audit_seq, 20);
  EXPECT_GT(b.manifest.schema_version, 0);
  // Keys are 0600 files of their own; the folder is 0700.
  struct stat st {};
  ASSERT_EQ(::stat((b.dir + "/keys/secrets.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(b.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const VerifyReport v = verify_backup(b.dir);
  EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems.front());
  EXPECT_EQ(v.audit_entries, 20);
  EXPECT_EQ(v.secrets_opened, 3);
  // Verifying did not change the backup (the store copy it opened was private).
  EXPECT_TRUE(verify_backup(b.dir).ok);
}

TEST_F(BackupFixture, TheCopyIsConsistentWhileTheServerKeepsWriting) {
  expect_whole_copies_while_writing(2000, 3);
}

TEST_F(BackupFixture, TamperedBackupsAreRefusedNamingWhatIsWrong) {
  const BackupResult b = make();
  // A changed byte in the store file.
  {
    std::fstream f(b.dir + "/ferry.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
  }
  VerifyReport v = verify_backup(b.dir);
  ASSERT_FALSE(v.ok);
  EXPECT_NE(v.problems.front().find("ferry.db"), std::string::npos) << v.problems.front();

  // A rewritten audit entry, with the checksum "fixed" to match: the chain catches it.
  const BackupResult b2 = make();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((b2.dir + "/ferry.db").c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "DROP TRIGGER audit_no_update", nullptr, nullptr, nullptr);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE audit SET actor = 'mallory' WHERE seq = 5", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  std::ifstream in(b2.dir + "/manifest.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto j = parse_json(text);
  ASSERT_TRUE(j.ok());
  auto m = manifest_from_json(*j);
  ASSERT_TRUE(m.ok());
  // Recompute the store file's checksum as a careful attacker would.
  for (auto& f : m->files)
    if (f.name == "ferry.db") {
      std::ifstream dbf(b2.dir + "/ferry.db", std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(dbf)), std::istreambuf_iterator<char>());
      f.sha256 = sha256_hex(bytes);
      f.bytes = static_cast<int64_t>(bytes.size());
    }
  fs::permissions(b2.dir + "/manifest.json", fs::perms::owner_read | fs::perms::owner_write);
  std::ofstream(b2.dir + "/manifest.json", std::ios::trunc) << manifest_to_json(*m).dump(2);
  v = verify_backup(b2.dir);
  ASSERT_FALSE(v.ok);
  bool chain = false;
  for (const auto& p : v.problems)
    chain |= p.find("audit chain broken at entry 5") != std::string::npos;
  EXPECT_TRUE(chain) << v.problems.front();

  // A manifest that names files outside the backup is refused.
  Json evil = manifest_to_json(b.manifest);
  evil["files"][0]["name"] = "../../etc/passwd";
  EXPECT_FALSE(manifest_from_json(evil).ok());
}

TEST_F(BackupFixture, AWrongSecretsKeyIsFoundByVerifyAndDrill) {
  const std::string keys = root_ + "/keys-apart";
  BackupOptions o;
  o.keys_to = keys;
  const BackupResult b = make(o);
  EXPECT_FALSE(fs::exists(b.dir + "/keys"));
  EXPECT_TRUE(fs::exists(b.manifest.keys_dir + "/secrets.key"));
  EXPECT_TRUE(verify_backup(b.dir).ok);
  // Replace the key kept apart with another one: nothing decrypts, and it is said.
  fs::remove(b.manifest.keys_dir + "/secrets.key");
  ASSERT_TRUE(SecretBox::create_key_file(b.manifest.keys_dir + "/secrets.key").ok());
  const VerifyReport v = verify_backup(b.dir);
  EXPECT_FALSE(v.ok);
  bool said = false;
  for (const auto& p : v.problems)
    said |= p.find("secrets.key") != std::string::npos ||
            p.find("secret web/prod/KEY0") != std::string::npos;
  EXPECT_TRUE(said) << v.problems.front();
  auto d = drill_backup(root_ + "/backups");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->verify.ok);
}

TEST_F(BackupFixture, RestoreRefusesALiveServerAndOtherwisePutsTheCopyInPlace) {
  const BackupResult b = make();
  add_audit("after-backup");  // the live store moves on
  // A server holds the data directory's lock: no restore.
  const std::string lock = server_.data_dir + "/server.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_TRUE(server_holds(server_));
  auto refused = restore_backup(server_, b.dir, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("running"), std::string::npos);
  ::close(fd);
  EXPECT_FALSE(server_holds(server_));

  store_.reset();  // the server stopped
  auto r = restore_backup(server_, b.dir, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto store = open_store(server_.store);
  ASSERT_TRUE(store.ok());
  auto head = (*store)->audit_head();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 20);  // the entry made after the backup is gone with the old file
  // The replaced store was kept.
  bool kept = false;
  for (const auto& e : fs::directory_iterator(server_.data_dir))
    kept |= e.path().filename().string().starts_with("ferry.db.before-restore-");
  EXPECT_TRUE(kept);
}

TEST_F(BackupFixture, DrillRestoresTheNewestIntoATemporaryStoreAndPruneKeepsN) {
  for (int i = 0; i < 4; ++i) make();
  const auto all = list_backups(root_ + "/backups");
  ASSERT_EQ(all.size(), 4u);
  auto d = drill_backup(root_ + "/backups");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->backup, all.front());
  EXPECT_TRUE(d->verify.ok) << (d->verify.problems.empty() ? "" : d->verify.problems.front());
  EXPECT_GT(d->restore_seconds, 0);
  // A half-made backup left by a crash is cleaned up by the next prune.
  fs::create_directories(root_ + "/backups/.partial-ferry-backup-x");
  EXPECT_EQ(prune_backups(root_ + "/backups", 2), 2);
  EXPECT_EQ(list_backups(root_ + "/backups").size(), 2u);
  EXPECT_FALSE(fs::exists(root_ + "/backups/.partial-ferry-backup-x"));
  EXPECT_FALSE(drill_backup(root_ + "/nothing-here").ok());
}

TEST_F(BackupFixture, TheSchedulerBacksUpDrillsAndReportsFailures) {
  server_.backups.every_ms = 3'600'000;
  server_.backups.keep = 2;
  server_.backups.dir = root_ + "/scheduled";
  std::vector<BackupOutcome> seen;
  BackupScheduler s(server_, "", "test", [&](const BackupOutcome& o) { seen.push_back(o); });
  EXPECT_EQ(s.last_success_unix(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.run_once().ok);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_GT(seen.back().drill_seconds, 0);
  EXPECT_GT(s.last_success_unix(), 0);
  EXPECT_EQ(list_backups(server_.backups.dir).size(), 2u);
  // The store disappears: the failure is counted and reported.
  store_.reset();
  fs::rename(server_.data_dir + "/ferry.db", server_.data_dir + "/moved.db");
  const BackupOutcome bad = s.run_once();
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("does not exist"), std::string::npos) << bad.error;
  EXPECT_EQ(s.failures(), 1);
}

// The same backups of a PostgreSQL store: copied from one snapshot into the SQLite file
// every backup holds, so verify, drill and restore work alike; a restore goes into a new,
// empty database.
class PgBackupFixture : public BackupFixture {
 protected:
  std::string store_url() override {
    std::string why;
    pg_ = testing::shared_pg_cluster(&why);
    if (!pg_) {
      skip_ = "PostgreSQL cannot run here: " + why;
      return "";
    }
    db_ = "b_" + random_id("", 8);
    EXPECT_TRUE(pg_->create_database(db_).ok());
    return pg_->url(db_);
  }
  void SetUp() override {
    BackupFixture::SetUp();
    if (!skip_.empty()) FERRY_SKIP_OR_FAIL(skip_);
  }
  void TearDown() override {
    store_.reset();
    for (const auto& d : {db_, db2_})
      if (pg_ && !d.empty()) (void)pg_->drop_database(d);
    BackupFixture::TearDown();
  }
  // A second, empty database to restore into: a server whose store was lost.
  ServerSpec fresh_server() {
    db2_ = "r_" + random_id("", 8);
    EXPECT_TRUE(pg_->create_database(db2_).ok());
    ServerSpec s = server_;
    s.data_dir = root_ + "/restored";
    fs::create_directories(s.data_dir);
    s.store = pg_->url(db2_);
    return s;
  }
  testing::PgCluster* pg_ = nullptr;
  std::string db_, db2_, skip_;
};

TEST_F(PgBackupFixture, APostgresStoreBacksUpVerifiesDrillsAndRestoresIntoAnEmptyDatabase) {
  const BackupResult b = make();
  ASSERT_FALSE(b.dir.empty());
  EXPECT_EQ(b.manifest.store_kind, "postgres");
  EXPECT_EQ(b.manifest.counts.at("secrets"), 3);
  EXPECT_EQ(b.manifest.counts.at("audit"), 20);
  EXPECT_EQ(b.manifest.audit_seq, 20);
  const VerifyReport v = verify_backup(b.dir);
  EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems.front());
  EXPECT_EQ(v.secrets_opened, 3);
  auto drill = drill_backup(root_ + "/backups");
  ASSERT_TRUE(drill.ok()) << drill.status().to_string();
  EXPECT_TRUE(drill->verify.ok);

  const ServerSpec to = fresh_server();
  auto r = restore_backup(to, b.dir, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto restored = open_store(to.store);
  ASSERT_TRUE(restored.ok());
  auto audit = (*restored)->list_audit(0, 100);
  ASSERT_EQ(audit->size(), 20u);
  auto live = store_->list_audit(0, 100);
  EXPECT_EQ(audit->back().hash, live->back().hash);
  EXPECT_EQ((*restored)->list_secrets("web", "prod")->size(), 3u);
  EXPECT_TRUE((*restored)->get_release("web", "v1").ok());
  // The keys came along and open what the restored store holds.
  auto box = SecretBox::from_key_file(secrets_key_path(to));
  ASSERT_TRUE(box.ok());
  auto secrets = (*restored)->list_secrets("web", "prod");
  ASSERT_TRUE(secrets.ok());
  for (const SecretRecord& sec : *secrets) {
    auto plain = open_secret(*box, sec);
    ASSERT_TRUE(plain.ok()) << sec.name << ": " << plain.status().to_string();
    EXPECT_EQ(*plain, "value-" + sec.name.substr(3));
  }
  // The restored store goes on: the next audit entry chains after the last one.
  auto next = (*restored)->append_audit({.actor = "bob", .action = "after-restore"},
                                        [](AuditRecord& e) { e.hash = "h"; });
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 21);
}

TEST_F(PgBackupFixture, ARestoreIntoADatabaseThatHoldsDataIsRefusedWithNothingChanged) {
  const BackupResult b = make();
  ASSERT_FALSE(b.dir.empty());
  add_audit("after-backup");  // the live store went on
  auto r = restore_backup(server_, b.dir, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("already holds data"), std::string::npos)
      << r.status().to_string();
  EXPECT_EQ(store_->list_audit(0, 100)->size(), 21u);
}

TEST_F(PgBackupFixture, TheCopyIsOneSnapshotWhileServersKeepWriting) {
  expect_whole_copies_while_writing(500, 2);
}

TEST(BackupStores, AnUnreachablePostgresStoreFailsClearlyAndLeavesNoHalfBackup) {
  const std::string dir = (fs::temp_directory_path() / ("ferry-pgbk-" + random_id("", 8))).string();
  ServerSpec s;
  s.data_dir = dir;
  s.store = "postgres://ferry@127.0.0.1:1/ferry";
  auto r = create_backup(s, BackupOptions{.to_dir = dir + "/backups"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("PostgreSQL"), std::string::npos) << r.status().to_string();
  EXPECT_TRUE(list_backups(dir + "/backups").empty());
  std::error_code ec;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/backups", ec), fs::directory_iterator()),
            0);
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace ferry::ops
