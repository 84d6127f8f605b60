// `ferry store copy`: a SQLite store moves to PostgreSQL whole, verified; the destination
// goes on where the source stopped (event seqs, the audit chain).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
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
  EXPECT_EQ(copy_store(pg_->url(db_), src_url_).status().code(), Code::kInvalidArgument);
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

}  // namespace
}  // namespace ferry
