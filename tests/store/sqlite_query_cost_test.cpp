// The queries the engine runs for every deployment (and every 250 ms) do work bounded by what
// they return, not by how many deployments an app has had (issue 22: server CPU per deployment
// grew with the history). Work is counted in SQLite VM steps (SqliteStore::vm_steps), never
// in time.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "common/crypto.h"
#include "store/sqlite/sqlite_store.h"

namespace ferry {
namespace {

class SqliteQueryCost : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-qcost-");
    auto s = SqliteStore::open((dir_ / "ferry.db").string());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // One finished deployment of web to dev with `events` events (besides "created"); the
  // last one added stays in flight when `open` is set.
  void add_deployment(int n, int events, bool open = false) {
    ReleaseRecord r;
    r.app = "web";
    r.version = "v" + std::to_string(n);
    r.created_at_ms = 1000 + n;
    ASSERT_TRUE(store_->create_release(r).ok());
    DeploymentRecord d;
    d.id = "d-" + std::to_string(n);
    d.app = "web";
    d.env = "dev";
    d.release = r.version;
    d.strategy = "immediate";
    d.created_at_ms = d.updated_at_ms = 2000 + n;
    ASSERT_TRUE(
        store_->create_deployment(d, {.deployment_id = d.id, .type = EventType::kCreated}).ok());
    auto got = store_->get_deployment(d.id);
    ASSERT_TRUE(got.ok());
    std::vector<DeploymentEvent> evs(
        events, DeploymentEvent{
                    .deployment_id = d.id, .type = EventType::kStepFinished, .message = "step"});
    if (!open) got->state = DeploymentState::kSucceeded;
    ASSERT_TRUE(store_->update_deployment(*got, evs).ok());
  }

  int64_t steps(const std::function<void()>& query) {
    const int64_t before = store_->vm_steps();
    query();
    return store_->vm_steps() - before;
  }

  // The work of the queries a deployment and the engine's poll run, with the newest
  // deployment in flight.
  std::vector<int64_t> costs(const std::string& newest) {
    std::vector<int64_t> out;
    out.push_back(steps([&] { ASSERT_EQ(store_->list_events(newest, 0, 1000)->size(), 7u); }));
    out.push_back(steps([&] {
      ASSERT_EQ(store_->list_deployments({.active_only = true, .limit = 1000})->size(), 1u);
    }));
    out.push_back(steps([&] {
      ASSERT_EQ(store_->list_deployments({.app = "web", .env = "dev", .active_only = true})->size(),
                1u);
    }));
    out.push_back(steps([&] {
      ASSERT_EQ(store_->list_deployments({.app = "web", .env = "dev", .limit = 5})->size(), 5u);
    }));
    out.push_back(steps([&] { ASSERT_EQ(store_->list_env_releases("web")->size(), 0u); }));
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteQueryCost, PerDeploymentQueriesDoNotGrowWithTheHistory) {
  for (int i = 0; i < 10; ++i) add_deployment(i, 6);
  add_deployment(10, 6, /*open=*/true);
  const auto early = costs("d-10");
  // Finish it and add 300 more deployments with their events; again the newest is in flight.
  auto d10 = store_->get_deployment("d-10");
  d10->state = DeploymentState::kSucceeded;
  ASSERT_TRUE(store_->update_deployment(*d10, {}).ok());
  for (int i = 11; i < 310; ++i) add_deployment(i, 6);
  add_deployment(310, 6, /*open=*/true);
  const auto late = costs("d-310");
  const char* names[] = {"list_events of one deployment", "list_deployments active",
                         "list_deployments active of one app and env",
                         "list_deployments newest 5 of one app and env",
                         "list_env_releases of one app"};
  for (size_t i = 0; i < early.size(); ++i) {
    // Thirty times the history: the work may differ by a few index pages, not 30x.
    EXPECT_LE(late[i], early[i] * 3 / 2 + 50)
        << names[i] << ": " << early[i] << " VM steps after 11 deployments, " << late[i]
        << " after 311";
  }
}

}  // namespace
}  // namespace ferry
