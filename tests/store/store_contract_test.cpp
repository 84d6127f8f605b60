// The Store contract, run against every backend: SQLite (a temp file) and PostgreSQL (a
// fresh database on a cluster the binary starts itself, tests/store/pg_cluster.h). A
// behaviour one backend has and the other lacks fails here.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/crypto.h"
#include "store/pg_cluster.h"
#include "store/postgres/pg.h"
#include "store/sqlite/db.h"
#include "store/store.h"
#include "test_skip.h"

namespace ferry {
namespace {

const auto* const kPgEnv = ::testing::AddGlobalTestEnvironment(new testing::PgClusterEnvironment);

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      dir_ = std::filesystem::temp_directory_path() / random_id("ferry-store-");
      url_ = "sqlite:" + (dir_ / "sub" / "ferry.db").string();
    } else {
      std::string why;
      pg_ = testing::shared_pg_cluster(&why);
      if (!pg_) FERRY_SKIP_OR_FAIL("PostgreSQL cannot run here: " << why);
      db_ = "t_" + random_id("", 8);
      ASSERT_TRUE(pg_->create_database(db_).ok());
      url_ = pg_->url(db_);
    }
    auto s = open_store(url_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (pg_ && !db_.empty()) (void)pg_->drop_database(db_);
  }

  // Runs SQL on the database behind the store's back (what an operator with psql or
  // sqlite3 could do).
  Status raw_sql(const std::string& sql) {
    if (GetParam() == "sqlite") {
      auto db = sqlite::Database::open(url_.substr(7));
      if (!db.ok()) return db.status();
      return (*db)->exec(sql);
    }
    auto c = pg::Connection::connect(url_, 5);
    if (!c.ok()) return c.status();
    return (*c)->exec_script(sql);
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
  testing::PgCluster* pg_ = nullptr;
  std::string db_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, MigrationsApplyOnceAndReopenKeepsVersion) {
  auto v = store_->schema_version();
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(*v, 6);  // 6: SLO buckets
  store_.reset();
  auto again = open_store(url_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->schema_version(), *v);
  EXPECT_TRUE((*again)->health().ok());
}

TEST_P(StoreContract, RestoreStepsFitTheBackend) {
  // What an operator is told to do about a damaged store names this backend's tools:
  // a SQLite file and its -wal/-shm, or PostgreSQL's own backups.
  const std::string steps = store_->restore_steps();
  EXPECT_EQ(store_restore_steps(url_), steps);
  if (GetParam() == "sqlite") {
    EXPECT_NE(steps.find("-wal"), std::string::npos) << steps;
    EXPECT_EQ(steps.find("PostgreSQL"), std::string::npos) << steps;
  } else {
    EXPECT_NE(steps.find("pg_restore"), std::string::npos) << steps;
    EXPECT_NE(steps.find("reconnects by itself"), std::string::npos) << steps;
    EXPECT_EQ(steps.find("-wal"), std::string::npos) << steps;
    EXPECT_EQ(steps.find("ferry backup restore"), std::string::npos) << steps;
    // The URL's password never shows: the steps do not quote the URL at all.
    EXPECT_EQ(steps.find(url_), std::string::npos);
  }
}

TEST_P(StoreContract, ReleasesRoundTripAndAreImmutable) {
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
  EXPECT_EQ((*list)[0].version, "v2");  // newest first (same time: the later insert)
  ASSERT_TRUE(store_->update_release_scan("web", "v1", "clean", {{"files", 3}}).ok());
  EXPECT_EQ(store_->get_release("web", "v1")->scan_status, "clean");
  EXPECT_EQ(store_->update_release_scan("web", "v7", "clean", {}).code(), Code::kNotFound);
}

TEST_P(StoreContract, DeploymentNeedsItsRelease) {
  Status s = store_->create_deployment(deployment("d-1", "nope"), {.type = EventType::kCreated});
  EXPECT_EQ(s.code(), Code::kNotFound) << s.to_string();
  EXPECT_TRUE(store_->list_deployments({})->empty());
}

TEST_P(StoreContract, OnlyOneDeploymentPerAppAndEnvironmentIsInProgress) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(store_->create_release(release("v2")).ok());
  ASSERT_TRUE(
      store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  Status s = store_->create_deployment(deployment("d-2", "v2"), {.type = EventType::kCreated});
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("in progress"), std::string::npos) << s.message();
  EXPECT_EQ(store_->get_deployment("d-2").status().code(), Code::kNotFound);  // nothing written
  EXPECT_TRUE(store_->list_events("d-2", 0, 10)->empty());
  // Another environment is independent; a finished one frees its environment.
  auto other = deployment("d-3", "v2");
  other.env = "staging";
  EXPECT_TRUE(store_->create_deployment(other, {.type = EventType::kCreated}).ok());
  auto d1 = store_->get_deployment("d-1");
  d1->state = DeploymentState::kSucceeded;
  ASSERT_TRUE(store_->update_deployment(*d1).ok());
  EXPECT_TRUE(
      store_->create_deployment(deployment("d-2", "v2"), {.type = EventType::kCreated}).ok());
  EXPECT_EQ(store_->list_events("d-2", 0, 10)->size(), 1u);
  EXPECT_EQ(store_->create_deployment(deployment("d-4", "v1"), {}).code(),
            Code::kFailedPrecondition);
}

// The store's constraint and its active filter follow is_final() for every state: one
// definition of "finished" (core/deployment_state.h).
TEST_P(StoreContract, TheRuleAndTheActiveFilterFollowIsFinalForEveryState) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  int expected_active = 0;
  for (auto state : all_deployment_states()) {
    const std::string env(to_string(state));
    auto d = deployment("d-" + env, "v1");
    d.env = env;
    ASSERT_TRUE(store_->create_deployment(d, {.type = EventType::kCreated}).ok());
    auto got = store_->get_deployment(d.id);
    got->state = state;
    ASSERT_TRUE(store_->update_deployment(*got).ok()) << state;
    EXPECT_EQ(store_->get_deployment(d.id)->state, state);
    auto next = deployment("d-next-" + env, "v1");
    next.env = env;
    Status s = store_->create_deployment(next, {.type = EventType::kCreated});
    if (is_final(state)) {
      EXPECT_TRUE(s.ok()) << state << ": " << s.to_string();
      ++expected_active;  // `next` itself is pending
    } else {
      EXPECT_EQ(s.code(), Code::kFailedPrecondition) << state;
      ++expected_active;  // `d`
    }
  }
  auto active = store_->list_deployments({.active_only = true, .limit = 100});
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(static_cast<int>(active->size()), expected_active);
  for (const auto& d : *active) EXPECT_FALSE(is_final(d.state)) << d.id;
}

// Two servers (two connections) racing to start a deployment of one app to one
// environment: exactly one wins, the others get the rule's error.
TEST_P(StoreContract, RacingCreatorsOnTwoConnectionsOnlyOneWins) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  auto second = open_store(url_);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  std::array<Store*, 2> stores = {store_.get(), second->get()};
  std::atomic<int> won{0}, refused{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&, t] {
      Status s = stores[t % 2]->create_deployment(deployment("d-" + std::to_string(t), "v1"),
                                                  {.type = EventType::kCreated});
      if (s.ok())
        ++won;
      else if (s.code() == Code::kFailedPrecondition)
        ++refused;
      else
        ++other;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 5);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(store_->list_deployments({.active_only = true})->size(), 1u);
}

TEST_P(StoreContract, DeploymentUpdateIsOptimisticAndCommitsEventsTogether) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(
      store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  auto a = store_->get_deployment("d-1");
  auto b = store_->get_deployment("d-1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->version, 1);
  a->state = DeploymentState::kRunning;
  a->current_step = 0;
  ASSERT_TRUE(store_->update_deployment(*a, {{.type = EventType::kStepStarted, .step = 0}}).ok());
  EXPECT_EQ(a->version, 2);
  b->state = DeploymentState::kAborted;
  EXPECT_EQ(store_->update_deployment(*b, {{.type = EventType::kAborted}}).code(), Code::kConflict);
  auto now = store_->get_deployment("d-1");
  EXPECT_EQ(now->state, DeploymentState::kRunning);
  EXPECT_EQ(now->plan, a->plan);
  auto events = store_->list_events("d-1", 0, 100);
  ASSERT_EQ(events->size(), 2u);  // the refused update's event is not there
  EXPECT_EQ((*events)[0].type, EventType::kCreated);
  EXPECT_EQ((*events)[1].type, EventType::kStepStarted);
  EXPECT_LT((*events)[0].seq, (*events)[1].seq);
  EXPECT_EQ(store_->list_events("d-1", (*events)[0].seq, 100)->size(), 1u);
  EXPECT_EQ(store_->list_events("", 0, 100)->size(), 2u);
  auto active = store_->list_deployments({.active_only = true});
  EXPECT_EQ(active->size(), 1u);
  EXPECT_EQ(store_->get_deployment("d-9").status().code(), Code::kNotFound);
}

TEST_P(StoreContract, EnvReleaseRecordsSuccess) {
  ASSERT_TRUE(store_->set_env_release({"web", "dev", "v1", "d-1", 5}).ok());
  EXPECT_TRUE(*store_->release_succeeded_in("web", "v1", "dev"));
  EXPECT_FALSE(*store_->release_succeeded_in("web", "v1", "staging"));
  ASSERT_TRUE(store_->set_env_release({"web", "dev", "v2", "d-2", 6}).ok());
  auto envs = store_->list_env_releases("web");
  ASSERT_EQ(envs->size(), 1u);
  EXPECT_EQ((*envs)[0].release, "v2");
  EXPECT_TRUE(*store_->release_succeeded_in("web", "v1", "dev"));  // history stays
  EXPECT_EQ(store_->list_env_releases("")->size(), 1u);
}

TEST_P(StoreContract, AuditIsChainedAndAppendOnly) {
  auto seal = [](AuditRecord& a) { a.hash = sha256_hex(a.prev_hash + a.action); };
  auto first = store_->append_audit({.actor = "alice", .action = "deploy"}, seal);
  auto second = store_->append_audit({.actor = "bob", .action = "approve"}, seal);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(first->prev_hash, std::string(64, '0'));
  EXPECT_EQ(second->prev_hash, first->hash);
  EXPECT_FALSE(raw_sql("UPDATE audit SET actor = 'mallory'").ok());
  EXPECT_FALSE(raw_sql("DELETE FROM audit").ok());
  if (GetParam() == "postgres") {
    EXPECT_FALSE(raw_sql("TRUNCATE audit").ok());
  }
  auto all = store_->list_audit(0, 10);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].actor, "alice");
  EXPECT_EQ(store_->audit_head()->hash, second->hash);
}

TEST_P(StoreContract, EmptyAuditHeadIsSeqZero) {
  auto head = store_->audit_head();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 0);
}

// Two stores on one database (two servers) appending at once: one chain, no gaps, no
// forks, events in increasing seq.
TEST_P(StoreContract, ConcurrentWritersOnTwoConnectionsLoseNothing) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(
      store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  auto second = open_store(url_);
  ASSERT_TRUE(second.ok());
  std::array<Store*, 2> stores = {store_.get(), second->get()};
  auto seal = [](AuditRecord& a) { a.hash = sha256_hex(a.prev_hash + std::to_string(a.seq)); };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        ASSERT_TRUE(stores[t % 2]
                        ->append_event({.deployment_id = "d-1", .type = EventType::kCommand})
                        .ok());
        ASSERT_TRUE(stores[t % 2]->append_audit({.action = "x"}, seal).ok());
      }
    });
  for (auto& t : ts) t.join();
  auto events = store_->list_events("d-1", 0, 1000);
  ASSERT_EQ(events->size(), 161u);
  for (size_t i = 1; i < events->size(); ++i) EXPECT_LT((*events)[i - 1].seq, (*events)[i].seq);
  auto audit = store_->list_audit(0, 1000);
  ASSERT_EQ(audit->size(), 160u);
  std::string prev(64, '0');
  for (size_t i = 0; i < audit->size(); ++i) {
    EXPECT_EQ((*audit)[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*audit)[i].prev_hash, prev);
    prev = (*audit)[i].hash;
  }
}

TEST_P(StoreContract, TokensAndSecretsAndApprovals) {
  ASSERT_TRUE(store_
                  ->create_token({.id = "t1",
                                  .name = "ci",
                                  .hash = "h",
                                  .role = "deployer",
                                  .envs = {"dev"},
                                  .expires_at_ms = 99})
                  .ok());
  EXPECT_EQ(store_->create_token({.id = "t1", .name = "again"}).code(), Code::kAlreadyExists);
  auto t = store_->get_token("t1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->envs, std::vector<std::string>{"dev"});
  EXPECT_EQ(t->expires_at_ms, 99);
  EXPECT_FALSE(t->revoked);
  ASSERT_TRUE(store_->revoke_token("t1").ok());
  EXPECT_TRUE(store_->get_token("t1")->revoked);
  EXPECT_EQ(store_->revoke_token("t9").code(), Code::kNotFound);
  EXPECT_EQ(store_->list_tokens()->size(), 1u);
  ASSERT_TRUE(store_->put_secret({"web", "dev", "DB_PASSWORD", "cafe", 1, "alice"}).ok());
  ASSERT_TRUE(store_->put_secret({"web", "dev", "DB_PASSWORD", "beef", 2, "bob"}).ok());
  auto secrets = store_->list_secrets("web", "dev");
  ASSERT_EQ(secrets->size(), 1u);
  EXPECT_EQ((*secrets)[0].ciphertext, "beef");
  ASSERT_TRUE(store_->delete_secret("web", "dev", "DB_PASSWORD").ok());
  EXPECT_EQ(store_->delete_secret("web", "dev", "DB_PASSWORD").code(), Code::kNotFound);
  ASSERT_TRUE(store_->add_approval({"web", "production", "v1", "bob", "lgtm", 1}).ok());
  ASSERT_TRUE(store_->add_approval({"web", "production", "v1", "bob", "again", 2}).ok());
  auto approvals = store_->list_approvals("web", "production", "v1");
  ASSERT_EQ(approvals->size(), 1u);
  EXPECT_EQ((*approvals)[0].comment, "again");
}

// Whatever a client sends travels as a parameter, never as SQL: hostile text round-trips
// byte for byte and the tables stay.
TEST_P(StoreContract, HostileValuesRoundTripVerbatim) {
  const std::vector<std::string> hostile = {
      "'; DROP TABLE releases; --", "$1",   "\\x00\\", "ü→😀", "a\"b'c",
      std::string(4000, 'x'),       "%s%n", "1 OR 1=1"};
  int n = 0;
  for (const auto& v : hostile) {
    ReleaseRecord r = release("v" + std::to_string(n++));
    r.git_sha = v;
    r.created_by = v;
    r.config = {{"k", v}};
    ASSERT_TRUE(store_->create_release(r).ok()) << v;
    auto got = store_->get_release("web", r.version);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->git_sha, v);
    EXPECT_EQ(got->config["k"], v);
    ASSERT_TRUE(store_->put_secret({"web", v, v, v, 1, v}).ok());
    auto s = store_->list_secrets("web", v);
    ASSERT_EQ(s->size(), 1u);
    EXPECT_EQ((*s)[0].ciphertext, v);
  }
  EXPECT_EQ(store_->list_releases("web", 100)->size(), hostile.size());
  EXPECT_EQ(store_->get_release("web", "' OR '1'='1").status().code(), Code::kNotFound);
}

// A row this ferry did not write (an unknown state, e.g. the retired "superseded") is an
// error naming it, never silently read as some other state.
TEST_P(StoreContract, UnknownStateInTheStoreIsAnErrorNotAGuess) {
  ASSERT_TRUE(store_->create_release(release("v1")).ok());
  ASSERT_TRUE(
      store_->create_deployment(deployment("d-1", "v1"), {.type = EventType::kCreated}).ok());
  ASSERT_TRUE(raw_sql("UPDATE deployments SET state = 'superseded' WHERE id = 'd-1'").ok());
  auto d = store_->get_deployment("d-1");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("unknown state 'superseded'"), std::string::npos)
      << d.status().message();
  ASSERT_TRUE(raw_sql("UPDATE deployment_events SET type = 'tick'").ok());
  auto e = store_->list_events("d-1", 0, 10);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("unknown type 'tick'"), std::string::npos);
}

// SLO buckets (docs/slo.md): deltas add up per bucket, cursors commit with them, minute
// buckets fold into hours and old ones go, on both backends alike.
SloBucketRecord slo_minute(int64_t start_ms, int64_t requests, int64_t errors) {
  SloBucketRecord b;
  b.app = "web";
  b.env = "production";
  b.start_ms = start_ms;
  b.requests = requests;
  b.errors = errors;
  b.latency = {requests - 1, 1};
  return b;
}

TEST_P(StoreContract, SloCountsAddUpAndCursorsCommitWithThem) {
  constexpr int64_t kT = 1'000 * 3'600'000LL;  // a whole hour
  SloCursorRecord cur{"local", "web", "production", "v1", Json{{"requests", 10}, {"status_5xx", 1}},
                      kT};
  ASSERT_TRUE(store_->add_slo_counts({slo_minute(kT, 10, 1)}, {cur}).ok());
  ASSERT_TRUE(
      store_->add_slo_counts({slo_minute(kT, 5, 2), slo_minute(kT + 60'000, 7, 0)}, {}).ok());
  auto b = store_->list_slo_buckets("web", "production", kT, kT + 3'600'000);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ((*b)[0].requests, 15);
  EXPECT_EQ((*b)[0].errors, 3);
  EXPECT_EQ((*b)[0].latency, (std::vector<int64_t>{13, 2}));
  EXPECT_EQ((*b)[1].requests, 7);
  // Another app or environment, or outside the range: not listed.
  EXPECT_TRUE(store_->list_slo_buckets("web", "staging", 0, kT * 2)->empty());
  EXPECT_EQ(store_->list_slo_buckets("web", "production", kT + 60'000, kT * 2)->size(), 1u);
  auto cursors = store_->list_slo_cursors();
  ASSERT_TRUE(cursors.ok());
  ASSERT_EQ(cursors->size(), 1u);
  EXPECT_EQ((*cursors)[0].counters["requests"], 10);
  // A bad delta (a width other than a minute or an hour, negative counts) changes nothing,
  // not even the cursor written with it.
  SloBucketRecord bad = slo_minute(kT, 1, 0);
  bad.width_ms = 1234;
  cur.counters["requests"] = 99;
  EXPECT_EQ(store_->add_slo_counts({slo_minute(kT, 1, 0), bad}, {cur}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(store_->add_slo_counts({slo_minute(kT, -5, 0)}, {}).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->list_slo_buckets("web", "production", kT, kT + 1)->at(0).requests, 15);
  EXPECT_EQ(store_->list_slo_cursors()->at(0).counters["requests"], 10);
}

TEST_P(StoreContract, SloCompactionFoldsMinutesIntoHoursAndDropsOldOnes) {
  constexpr int64_t kH = 3'600'000;
  constexpr int64_t kT = 2'000 * kH;
  std::vector<SloBucketRecord> minutes;
  for (int m = 0; m < 60; ++m) minutes.push_back(slo_minute(kT + m * 60'000, 2, m == 7 ? 1 : 0));
  minutes.push_back(slo_minute(kT + kH, 3, 0));        // the next hour: kept as minutes
  minutes.push_back(slo_minute(kT - 100 * kH, 9, 9));  // far older: dropped
  ASSERT_TRUE(store_->add_slo_counts(minutes, {}).ok());
  ASSERT_TRUE(store_
                  ->add_slo_counts({}, {{"local", "web", "production", "old", Json::object(), 5},
                                        {"local", "web", "production", "v2", Json::object(), kT}})
                  .ok());
  EXPECT_EQ(store_->compact_slo(kT + 1, kT - 50 * kH, kT).code(), Code::kInvalidArgument);
  ASSERT_TRUE(store_->compact_slo(kT + kH, kT - 50 * kH, kT).ok());
  auto b = store_->list_slo_buckets("web", "production", 0, kT * 2);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ((*b)[0].start_ms, kT);
  EXPECT_EQ((*b)[0].width_ms, kH);
  EXPECT_EQ((*b)[0].requests, 120);
  EXPECT_EQ((*b)[0].errors, 1);
  EXPECT_EQ((*b)[0].latency, (std::vector<int64_t>{60, 60}));
  EXPECT_EQ((*b)[1].width_ms, 60'000);
  // Compacting again changes nothing; late minutes of a compacted hour add onto it.
  ASSERT_TRUE(store_->compact_slo(kT + kH, kT - 50 * kH, kT).ok());
  ASSERT_TRUE(store_->add_slo_counts({slo_minute(kT + 5 * 60'000, 4, 0)}, {}).ok());
  ASSERT_TRUE(store_->compact_slo(kT + kH, kT - 50 * kH, kT).ok());
  b = store_->list_slo_buckets("web", "production", 0, kT * 2);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ((*b)[0].requests, 124);
  auto cursors = store_->list_slo_cursors();
  ASSERT_EQ(cursors->size(), 1u);
  EXPECT_EQ((*cursors)[0].release, "v2");
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

TEST(OpenStore, RejectsUnknownSchemeNamingTheKnownOnes) {
  auto s = open_store("mysql://root:hunter2@db/x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("sqlite:PATH"), std::string::npos);
  EXPECT_NE(s.status().message().find("postgres://"), std::string::npos);
  EXPECT_EQ(s.status().message().find("hunter2"), std::string::npos) << s.status().message();
}

TEST(OpenStore, ValidateAcceptsWhatOpenCanOpenAndNeverEchoesAPassword) {
  EXPECT_TRUE(validate_store_url("sqlite:.ferry/ferry.db").ok());
  EXPECT_TRUE(validate_store_url("postgres://ferry@db.internal/ferry").ok());
  EXPECT_TRUE(
      validate_store_url("postgresql://ferry:pw@127.0.0.1:5432/ferry?sslmode=require").ok());
  EXPECT_FALSE(validate_store_url("sqlite:").ok());
  EXPECT_FALSE(validate_store_url("mongodb://x").ok());
  EXPECT_FALSE(validate_store_url("").ok());
  for (const char* bad :
       {"postgres://ferry:s3cretpw@db:notaport/ferry",
        "postgres://ferry:s3cretpw@db/ferry?nosuchoption=1", "postgres://ferry:s3cretpw@db/%zz"}) {
    Status s = validate_store_url(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().find("s3cretpw"), std::string::npos) << s.message();
  }
}

TEST(OpenStore, UnreachablePostgresIsUnavailableWithoutThePassword) {
  // A port nothing listens on (bound and closed just now).
  const int port = testing::pg_free_port();
  auto s = open_store("postgres://ferry:s3cretpw@127.0.0.1:" + std::to_string(port) + "/ferry");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kUnavailable) << s.status().to_string();
  EXPECT_EQ(s.status().message().find("s3cretpw"), std::string::npos);
}

}  // namespace
}  // namespace ferry
