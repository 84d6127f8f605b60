// Leader election and fencing against a real PostgreSQL (server/leader.h, Store::try_lead,
// Store::set_fencing_token): one leader at a time, a token that grows with every term, a
// standby that takes over a lapsed or resigned lease, and a stale leader whose writes are
// refused inside the store's transaction so nothing it tries lands.
#include "server/leader.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "common/crypto.h"
#include "store/pg_cluster.h"
#include "test_skip.h"

namespace ferry {
namespace {

const auto* const kLeaderPgEnv =
    ::testing::AddGlobalTestEnvironment(new testing::PgClusterEnvironment);

template <typename Pred>
bool leader_wait_for(Pred pred, std::chrono::seconds bound = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class LeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::pg_bindir().empty()) FERRY_SKIP_OR_FAIL("PostgreSQL is not installed");
    std::string why;
    pg_ = testing::shared_pg_cluster(&why);
    ASSERT_NE(pg_, nullptr) << why;
    db_ = "lead_" + random_id("", 6);
    ASSERT_TRUE(pg_->create_database(db_).ok());
  }
  void TearDown() override {
    if (pg_) (void)pg_->drop_database(db_);
  }
  std::unique_ptr<Store> open() {
    auto s = open_store(pg_->url(db_));
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static ReleaseRecord release(const std::string& version) {
    return ReleaseRecord{.app = "web", .version = version, .created_at_ms = 1};
  }

  testing::PgCluster* pg_ = nullptr;
  std::string db_;
};

TEST_F(LeaderTest, OneHolderAtATimeAndTheTokenGrowsWithEveryTerm) {
  auto a = open(), b = open();
  ASSERT_TRUE(a && b);
  auto first = a->try_lead("a", "127.0.0.1:1", 60'000, 0);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->holder, "a");
  EXPECT_EQ(first->address, "127.0.0.1:1");
  EXPECT_GT(first->remaining_ms, 50'000);
  const int64_t t1 = first->token;
  EXPECT_GE(t1, 1);

  // A live lease is not taken.
  auto refused = b->try_lead("b", "127.0.0.1:2", 60'000, 0);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->holder, "a");
  EXPECT_EQ(refused->token, t1);
  // The holder's renewal keeps its token.
  auto renewed = a->try_lead("a", "127.0.0.1:1", 200, t1);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->holder, "a");
  EXPECT_EQ(renewed->token, t1);

  // Lapsed (200 ms by the database's clock): b takes it, with the next token.
  LeaderLease won;
  ASSERT_TRUE(leader_wait_for([&] {
    auto r = b->try_lead("b", "127.0.0.1:2", 60'000, 0);
    if (r.ok()) won = *r;
    return r.ok() && r->holder == "b";
  }));
  EXPECT_EQ(won.token, t1 + 1);
  // a's renewal with its old token finds b: a has lost it, and the lease is b's still.
  auto lost = a->try_lead("a", "127.0.0.1:1", 60'000, t1);
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(lost->holder, "b");
  EXPECT_EQ(lost->token, t1 + 1);

  // Resigning ends the lease at once; only the holder with its token can.
  ASSERT_TRUE(a->resign("b", t1).ok());  // wrong token: no-op
  EXPECT_EQ(b->leader_lease()->holder, "b");
  EXPECT_GT(b->leader_lease()->remaining_ms, 0);
  ASSERT_TRUE(b->resign("b", t1 + 1).ok());
  auto after = a->try_lead("a", "127.0.0.1:1", 60'000, 0);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->holder, "a");
  EXPECT_EQ(after->token, t1 + 2);
}

TEST_F(LeaderTest, AStaleLeaderCannotWriteAnything) {
  auto a = open(), b = open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->create_release(release("v1")).ok());
  DeploymentRecord d{.id = "d1",
                     .app = "web",
                     .env = "dev",
                     .release = "v1",
                     .state = DeploymentState::kRunning,
                     .strategy = "canary",
                     .created_at_ms = 1,
                     .updated_at_ms = 1};
  ASSERT_TRUE(a->create_deployment(d, {.type = EventType::kCreated}).ok());

  auto lead = a->try_lead("a", "x:1", 200, 0);
  ASSERT_TRUE(lead.ok());
  ASSERT_EQ(lead->holder, "a");
  std::atomic<int> fenced_calls{0};
  a->set_fencing_token(lead->token, [&] { ++fenced_calls; });
  // While it leads, its writes go through.
  ASSERT_TRUE(a->create_release(release("v2")).ok());
  auto seal = [](AuditRecord& r) { r.hash = sha256_hex(r.prev_hash + r.action); };
  ASSERT_TRUE(a->append_audit({.actor = "engine", .action = "one"}, seal).ok());
  EXPECT_EQ(fenced_calls.load(), 0);

  // a stops renewing (SIGSTOP, a VM pause); b takes the lapsed lease.
  ASSERT_TRUE(leader_wait_for([&] {
    auto r = b->try_lead("b", "y:1", 60'000, 0);
    return r.ok() && r->holder == "b";
  }));
  const auto head_before = b->audit_head();
  ASSERT_TRUE(head_before.ok());

  // a runs again and tries every kind of write: each is refused, nothing lands.
  auto expect_fenced = [&](const Status& s, const char* what) {
    EXPECT_EQ(s.code(), Code::kUnavailable) << what << ": " << s.to_string();
    EXPECT_NE(s.message().find("no longer the leader"), std::string::npos) << s.message();
  };
  expect_fenced(a->create_release(release("v3")), "create_release");
  DeploymentRecord stale = *a->get_deployment("d1");
  stale.state = DeploymentState::kRolledBack;
  expect_fenced(a->update_deployment(stale, {{.type = EventType::kRolledBack}}),
                "update_deployment");
  expect_fenced(a->append_event({.deployment_id = "d1", .type = EventType::kStepStarted}).status(),
                "append_event");
  expect_fenced(a->append_audit({.actor = "engine", .action = "stale"}, seal).status(),
                "append_audit");
  expect_fenced(
      a->put_agent_desired(
          {.agent = "h1", .app = "web", .env = "dev", .generation = 99, .updated_at_ms = 1}),
      "put_agent_desired");
  expect_fenced(a->set_env_release({.app = "web", .env = "dev", .release = "v1"}),
                "set_env_release");
  expect_fenced(a->put_secret({.app = "web", .env = "dev", .name = "K", .ciphertext = "c"}),
                "put_secret");
  expect_fenced(a->create_token({.id = "t1", .name = "n", .hash = "h", .role = "admin"}),
                "create_token");
  EXPECT_GE(fenced_calls.load(), 8);

  // Read through b, the leader: none of it is there.
  EXPECT_EQ(b->get_release("web", "v3").status().code(), Code::kNotFound);
  auto now_d = b->get_deployment("d1");
  ASSERT_TRUE(now_d.ok());
  EXPECT_EQ(now_d->state, DeploymentState::kRunning);
  EXPECT_EQ(now_d->version, 1);  // as created
  auto events = b->list_events("d1", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 1u);  // only `created`
  auto head_after = b->audit_head();
  ASSERT_TRUE(head_after.ok());
  EXPECT_EQ(head_after->seq, head_before->seq);
  EXPECT_TRUE(b->list_agent_desired()->empty());
  EXPECT_TRUE(b->list_env_releases("web")->empty());
  EXPECT_TRUE(b->list_secrets("web", "dev")->empty());
  EXPECT_EQ(b->get_token("t1").status().code(), Code::kNotFound);

  // The new leader writes with its own token.
  b->set_fencing_token(b->leader_lease()->token, [] {});
  EXPECT_TRUE(b->create_release(release("v4")).ok());
  // A standby's own writes (no token) are not fenced.
  a->set_fencing_token(0, {});
  EXPECT_TRUE(a->append_audit({.actor = "server", .action = "standby"}, seal).ok());
}

TEST_F(LeaderTest, AWriteInFlightHoldsTheTakeoverBackUntilItCommits) {
  // The fencing check share-locks the lease row: a takeover cannot slip in between the
  // check and the commit of a write that passed it.
  auto a = open(), b = open();
  ASSERT_TRUE(a && b);
  auto lead = a->try_lead("a", "x:1", 200, 0);
  ASSERT_TRUE(lead.ok());
  // Another session holds the row the way a write of the leader does, then lets go.
  PGconn* c = PQconnectdb(
      ("host=127.0.0.1 port=" + std::to_string(pg_->port()) + " dbname=" + db_ + " user=ferry")
          .c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  PQclear(PQexec(c, "BEGIN"));
  PQclear(PQexec(c, "SELECT token FROM leader_lease WHERE id = 1 FOR SHARE"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a's lease has lapsed
  std::atomic<bool> took{false};
  std::thread taker([&] {
    auto r = b->try_lead("b", "y:1", 60'000, 0);
    took = r.ok() && r->holder == "b";
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(took.load());  // waiting for the write's transaction
  PQclear(PQexec(c, "COMMIT"));
  taker.join();
  PQfinish(c);
  EXPECT_TRUE(took.load());
}

struct ElectorProbe {
  std::atomic<int> elected{0}, lost{0};
  std::atomic<int64_t> last_token{0};
  LeaderOptions options(const std::string& holder, int lease_ms) {
    LeaderOptions o;
    o.holder = holder;
    o.address = "127.0.0.1:" + std::to_string(holder.size());
    o.lease_ms = lease_ms;
    o.on_elected = [this](int64_t t) {
      last_token = t;
      ++elected;
    };
    o.on_lost = [this](const std::string&) { ++lost; };
    return o;
  }
};

TEST_F(LeaderTest, ElectorsAgreeOnOneLeaderAndAStandbyTakesOverWhenItResigns) {
  auto fa = open(), fb = open();
  ASSERT_TRUE(fa && fb);
  ElectorProbe pa, pb;
  auto ea = std::make_unique<LeaderElector>(*fa, open(), pa.options("alpha", 1000), nullptr);
  LeaderElector eb(*fb, open(), pb.options("beta", 1000), nullptr);
  ea->start();
  eb.start();
  ASSERT_TRUE(leader_wait_for([&] { return ea->is_leader() || eb.is_leader(); }));
  LeaderElector& first = ea->is_leader() ? *ea : eb;
  LeaderElector& second = ea->is_leader() ? eb : *ea;
  // Over a few renewals: still exactly one.
  for (int i = 0; i < 20; ++i) {
    EXPECT_NE(ea->is_leader(), eb.is_leader());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int64_t t1 = first.token();
  EXPECT_GE(t1, 1);
  EXPECT_EQ(second.token(), 0);
  EXPECT_EQ(second.last_seen().holder, first.holder());

  if (&first == ea.get()) {
    ea->stop();  // resigns
    EXPECT_EQ(pa.lost.load(), 1);
    ASSERT_TRUE(leader_wait_for([&] { return eb.is_leader(); }));
    EXPECT_EQ(eb.token(), t1 + 1);
    EXPECT_EQ(pb.last_token.load(), t1 + 1);
  } else {
    eb.stop();
    EXPECT_EQ(pb.lost.load(), 1);
    ASSERT_TRUE(leader_wait_for([&] { return ea->is_leader(); }));
    EXPECT_EQ(ea->token(), t1 + 1);
  }
  ea.reset();
}

TEST_F(LeaderTest, ALeaderWhoseLeaseWasTakenStepsDownOnItsNextWrite) {
  auto fenced = open();
  ASSERT_TRUE(fenced);
  ElectorProbe probe;
  // A long lease: the renewal (every 20 s) is not what notices; the refused write is.
  LeaderElector e(*fenced, open(), probe.options("alpha", 60'000), nullptr);
  e.start();
  ASSERT_TRUE(leader_wait_for([&] { return e.is_leader(); }));
  const int64_t t = e.token();
  ASSERT_TRUE(fenced->create_release(release("v1")).ok());
  // Another server takes over (as if alpha had been paused past its lease).
  ASSERT_TRUE(pg_->sql("UPDATE leader_lease SET holder = 'beta', token = token + 1, "
                       "expires_at = clock_timestamp() + interval '1 minute'",
                       db_)
                  .ok());
  Status s = fenced->create_release(release("v2"));
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.to_string();
  ASSERT_TRUE(leader_wait_for([&] { return !e.is_leader(); }, std::chrono::seconds(10)));
  EXPECT_EQ(probe.lost.load(), 1);
  EXPECT_EQ(e.token(), 0);
  // It reads who leads now right after stepping down.
  ASSERT_TRUE(
      leader_wait_for([&] { return e.last_seen().holder == "beta"; }, std::chrono::seconds(10)));
  EXPECT_EQ(e.last_seen().token, t + 1);
  e.stop();
  EXPECT_EQ(probe.lost.load(), 1);  // not twice
}

TEST(LeaderSqlite, ASqliteStoreHasNoLease) {
  const std::string dir = ::testing::TempDir() + "/leader-sqlite-" + random_id("", 4);
  auto s = open_store("sqlite:" + dir + "/ferry.db");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->try_lead("a", "x:1", 1000, 0).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ((*s)->leader_lease().status().code(), Code::kFailedPrecondition);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace ferry
