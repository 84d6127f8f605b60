#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/crypto.h"
#include "store/sqlite/db.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/sqlite_store.h"

namespace ferry {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-store-");
    path_ = (dir_ / "sub" / "ferry.db").string();
    auto s = open_store("sqlite:" + path_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  ReleaseRecord release(std::string v) {
    ReleaseRecord r;
    r.app = "web";
    r.version = std::move(v);
    r.git_sha = "abc123";
    r.config = {{"instances", 2}};
    r.created_at_ms = 1000;
    return r;
  }
  DeploymentRecord deployment(std::string id, std::string rel) {
    DeploymentRecord d;
    d.id = std::move(id);
    d.app = "web";
    d.env = "dev";
    d.release = std::move(rel);
    d.strategy = "canary";
    d.plan = Json::array({{{"kind", "weight"}, {"weight", 10}}});
    d.created_at_ms = d.updated_at_ms = 2000;
    return d;
  }
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, MigrationsApplyOnceAndReopenKeepsVersion) {
  auto v = store_->schema_version();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, static_cast<int>(sqlite::migrations().size()));
  store_.reset();
  auto again = open_store("sqlite:" + path_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->schema_version(), *v);
}

TEST_F(StoreTest, ReleasesRoundTripAndAreImmutable) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  auto dup = store_->create_release(release("v1"));
  EXPECT_EQ(dup.code(), Code::kAlreadyExists);
  auto got = store_->get_release("web", "v1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->git_sha, "abc123");
  EXPECT_EQ(got->config["instances"], 2);
  EXPECT_EQ(store_->get_release("web", "v9").status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->create_release(release("v2")).ok());
  auto list = store_->list_releases("web", 10);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, "v2");  // newest first
}

TEST_F(StoreTest, DeploymentNeedsItsRelease) {
  DeploymentEvent created{.type = EventType::kCreated};
  EXPECT_FALSE(store_->create_deployment(deployment("d-1", "nope"), created).ok());
}

TEST_F(StoreTest, OnlyOneDeploymentPerAppAndEnvironmentIsInProgress) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(store_->create_release(release("v2")).ok());
  ASSERT_TRUE(store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  Status s = store_->create_deployment(deployment("d-2", "v2"), {.type = EventType::kCreated});
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("in progress"), std::string::npos) << s.message();
  // Another environment is independent; a finished one frees its environment.
  auto other = deployment("d-3", "v2");
  other.env = "staging";
  EXPECT_TRUE(store_->create_deployment(other, {.type = EventType::kCreated}).ok());
  auto d1 = store_->get_deployment("d-1");
  d1->state = DeploymentState::kSucceeded;
  ASSERT_TRUE(store_->update_deployment(*d1).ok());
  EXPECT_TRUE(store_->create_deployment(deployment("d-2", "v2"), {.type = EventType::kCreated}).ok());
  EXPECT_TRUE(store_->list_events("d-2", 0, 10)->size() == 1u);
}

TEST_F(StoreTest, DeploymentUpdateIsOptimisticAndCommitsEventsTogether) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  auto a = store_->get_deployment("d-1");
  auto b = store_->get_deployment("d-1");
  ASSERT_TRUE(a.ok() && b.ok());
  a->state = DeploymentState::kRunning;
  a->current_step = 0;
  ASSERT_TRUE(store_->update_deployment(*a, {{.type = EventType::kStepStarted, .step = 0}}).ok());
  b->state = DeploymentState::kAborted;
  EXPECT_EQ(store_->update_deployment(*b).code(), Code::kConflict);
  auto now = store_->get_deployment("d-1");
  EXPECT_EQ(now->state, DeploymentState::kRunning);
  auto events = store_->list_events("d-1", 0, 100);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, EventType::kCreated);
  EXPECT_EQ((*events)[1].type, EventType::kStepStarted);
  EXPECT_LT((*events)[0].seq, (*events)[1].seq);
  auto active = store_->list_deployments({.active_only = true});
  EXPECT_EQ(active->size(), 1u);
}

TEST_F(StoreTest, EnvReleaseRecordsSuccess) {
  ASSERT_TRUE(store_->set_env_release({"web", "dev", "v1", "d-1", 5}).ok());
  EXPECT_TRUE(*store_->release_succeeded_in("web", "v1", "dev"));
  EXPECT_FALSE(*store_->release_succeeded_in("web", "v1", "staging"));
  ASSERT_TRUE(store_->set_env_release({"web", "dev", "v2", "d-2", 6}).ok());
  auto envs = store_->list_env_releases("web");
  ASSERT_EQ(envs->size(), 1u);
  EXPECT_EQ((*envs)[0].release, "v2");
  EXPECT_TRUE(*store_->release_succeeded_in("web", "v1", "dev"));  // history stays
}

TEST_F(StoreTest, AuditIsChainedAndAppendOnly) {
  auto seal = [](AuditRecord& a) { a.hash = sha256_hex(a.prev_hash + a.action); };
  auto first = store_->append_audit({.actor = "alice", .action = "deploy"}, seal);
  auto second = store_->append_audit({.actor = "bob", .action = "approve"}, seal);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(second->prev_hash, first->hash);
  auto db = sqlite::Database::open(path_);
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE((*db)->exec("UPDATE audit SET actor = 'mallory'").ok());
  EXPECT_FALSE((*db)->exec("DELETE FROM audit").ok());
  EXPECT_EQ(store_->list_audit(0, 10)->size(), 2u);
}

TEST_F(StoreTest, ConcurrentWritersLoseNothing) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(store_->append_event({.deployment_id = "d-1", .type = EventType::kCommand}).ok());
        ASSERT_TRUE(store_->append_audit({.action = "x"}, [](AuditRecord& a) { a.hash = "h"; }).ok());
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(store_->list_events("d-1", 0, 1000)->size(), 201u);
  auto audit = store_->list_audit(0, 1000);
  ASSERT_EQ(audit->size(), 200u);
  for (size_t i = 0; i < audit->size(); ++i) EXPECT_EQ((*audit)[i].seq, static_cast<int64_t>(i + 1));
}

TEST_F(StoreTest, TokensAndSecretsAndApprovals) {
  ASSERT_TRUE(store_->create_token({.id = "t1", .name = "ci", .hash = "h", .role = "deployer",
                                    .envs = {"dev"}}).ok());
  auto t = store_->get_token("t1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->envs, std::vector<std::string>{"dev"});
  ASSERT_TRUE(store_->revoke_token("t1").ok());
  EXPECT_TRUE(store_->get_token("t1")->revoked);
  ASSERT_TRUE(store_->put_secret({"web", "dev", "DB_PASSWORD", "cafe", 1, "alice"}).ok());
  EXPECT_EQ(store_->list_secrets("web", "dev")->size(), 1u);
  ASSERT_TRUE(store_->delete_secret("web", "dev", "DB_PASSWORD").ok());
  EXPECT_EQ(store_->delete_secret("web", "dev", "DB_PASSWORD").code(), Code::kNotFound);
  ASSERT_TRUE(store_->add_approval({"web", "production", "v1", "bob", "lgtm", 1}).ok());
  EXPECT_EQ(store_->list_approvals("web", "production", "v1")->size(), 1u);
}

TEST(OpenStore, RejectsUnknownScheme) {
  auto s = open_store("mysql://x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("sqlite:PATH"), std::string::npos);
}

}  // namespace
}  // namespace ferry
