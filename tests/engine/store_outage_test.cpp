// A store outage (PostgreSQL restarting) in the middle of a deployment: the deployment
// holds its step instead of failing, and goes on when the store is back.
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

#include "engine_fixture.h"

namespace ferry {
namespace {

// A Store that answers kUnavailable to every call while `down` is set, like PgStore
// during a PostgreSQL restart; otherwise the real SQLite store behind it.
class OutageStore final : public Store {
 public:
  explicit OutageStore(Store* real) : real_(real) {}
  std::atomic<bool> down{false};
  std::atomic<int> refused{0};

#define FERRY_OUTAGE_FORWARD(call)                                           \
  if (down.load()) {                                                         \
    ++refused;                                                               \
    return unavailable("the PostgreSQL store is unreachable (test outage)"); \
  }                                                                          \
  return real_->call

  Result<int> schema_version() override {
    FERRY_OUTAGE_FORWARD(schema_version());
  }
  Status health() override {
    FERRY_OUTAGE_FORWARD(health());
  }
  Result<std::vector<std::string>> check() override {
    FERRY_OUTAGE_FORWARD(check());
  }
  std::string restore_steps() const override {
    return real_->restore_steps();
  }
  Status create_release(const ReleaseRecord& r) override {
    FERRY_OUTAGE_FORWARD(create_release(r));
  }
  Result<ReleaseRecord> get_release(const std::string& a, const std::string& v) override {
    FERRY_OUTAGE_FORWARD(get_release(a, v));
  }
  Result<std::vector<ReleaseRecord>> list_releases(const std::string& a, int l) override {
    FERRY_OUTAGE_FORWARD(list_releases(a, l));
  }
  Status update_release_scan(const std::string& a, const std::string& v, const std::string& s,
                             const Json& j) override {
    FERRY_OUTAGE_FORWARD(update_release_scan(a, v, s, j));
  }
  Status create_deployment(const DeploymentRecord& d, const DeploymentEvent& e) override {
    FERRY_OUTAGE_FORWARD(create_deployment(d, e));
  }
  Status update_deployment(DeploymentRecord& d, const std::vector<DeploymentEvent>& e) override {
    FERRY_OUTAGE_FORWARD(update_deployment(d, e));
  }
  Result<DeploymentRecord> get_deployment(const std::string& id) override {
    FERRY_OUTAGE_FORWARD(get_deployment(id));
  }
  Result<std::vector<DeploymentRecord>> list_deployments(const DeploymentFilter& f) override {
    if (f.active_only) {
      std::unique_lock l(hold_mu_);
      if (hold_) {
        hold_ = false;
        held_ = true;
        hold_cv_.notify_all();
        auto r = real_->list_deployments(f);  // read now, answered after release_list()
        hold_cv_.wait(l, [this] { return !held_; });
        return r;
      }
    }
    FERRY_OUTAGE_FORWARD(list_deployments(f));
  }
  // The next list of open deployments (the engine's supervisor lists them every round)
  // is read at once but answered only after release_list(): a stale list, as when the
  // supervisor is slow. held() says that one is waiting.
  void hold_next_open_list() {
    std::lock_guard l(hold_mu_);
    hold_ = true;
  }
  bool held() {
    std::lock_guard l(hold_mu_);
    return held_;
  }
  void release_list() {
    std::lock_guard l(hold_mu_);
    held_ = false;
    hold_cv_.notify_all();
  }
  Result<int64_t> append_event(const DeploymentEvent& e) override {
    FERRY_OUTAGE_FORWARD(append_event(e));
  }
  Result<std::vector<DeploymentEvent>> list_events(const std::string& id, int64_t a,
                                                   int l) override {
    FERRY_OUTAGE_FORWARD(list_events(id, a, l));
  }
  Status set_env_release(const EnvReleaseRecord& r) override {
    FERRY_OUTAGE_FORWARD(set_env_release(r));
  }
  Result<std::vector<EnvReleaseRecord>> list_env_releases(const std::string& a) override {
    FERRY_OUTAGE_FORWARD(list_env_releases(a));
  }
  Result<bool> release_succeeded_in(const std::string& a, const std::string& r,
                                    const std::string& e) override {
    FERRY_OUTAGE_FORWARD(release_succeeded_in(a, r, e));
  }
  Status put_agent_desired(const AgentDesiredRecord& r) override {
    FERRY_OUTAGE_FORWARD(put_agent_desired(r));
  }
  Result<std::vector<AgentDesiredRecord>> list_agent_desired() override {
    FERRY_OUTAGE_FORWARD(list_agent_desired());
  }
  Status create_token(const TokenRecord& t) override {
    FERRY_OUTAGE_FORWARD(create_token(t));
  }
  Result<TokenRecord> get_token(const std::string& id) override {
    FERRY_OUTAGE_FORWARD(get_token(id));
  }
  Result<std::vector<TokenRecord>> list_tokens() override {
    FERRY_OUTAGE_FORWARD(list_tokens());
  }
  Status revoke_token(const std::string& id) override {
    FERRY_OUTAGE_FORWARD(revoke_token(id));
  }
  Result<AuditRecord> append_audit(AuditRecord a,
                                   const std::function<void(AuditRecord&)>& s) override {
    FERRY_OUTAGE_FORWARD(append_audit(a, s));
  }
  Result<std::vector<AuditRecord>> list_audit(int64_t a, int l) override {
    FERRY_OUTAGE_FORWARD(list_audit(a, l));
  }
  Result<AuditRecord> audit_head() override {
    FERRY_OUTAGE_FORWARD(audit_head());
  }
  Status add_approval(const ApprovalRecord& a) override {
    FERRY_OUTAGE_FORWARD(add_approval(a));
  }
  Result<std::vector<ApprovalRecord>> list_approvals(const std::string& a, const std::string& e,
                                                     const std::string& r) override {
    FERRY_OUTAGE_FORWARD(list_approvals(a, e, r));
  }
  Status put_secret(const SecretRecord& s) override {
    FERRY_OUTAGE_FORWARD(put_secret(s));
  }
  Status delete_secret(const std::string& a, const std::string& e, const std::string& n) override {
    FERRY_OUTAGE_FORWARD(delete_secret(a, e, n));
  }
  Result<std::vector<SecretRecord>> list_secrets(const std::string& a,
                                                 const std::string& e) override {
    FERRY_OUTAGE_FORWARD(list_secrets(a, e));
  }
#undef FERRY_OUTAGE_FORWARD

 private:
  Store* real_;
  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  bool hold_ = false, held_ = false;
};

class StoreOutageTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    outage_ = std::make_unique<OutageStore>(store_.get());
    start_outage_engine();
  }
  void start_outage_engine() {
    engine_.reset();
    EngineContext ctx;
    ctx.store = outage_.get();
    ctx.clock = &clock_;
    ctx.log = log_.get();
    ctx.masker = log_->masker();
    ctx.agents = [this](const std::string&) { return std::vector<AgentClient*>{&agent_}; };
    engine_ = std::make_unique<Engine>(ctx, std::make_shared<const Config>(config_));
    engine_->start();
  }
  void TearDown() override {
    engine_.reset();
    outage_.reset();
    EngineFixture::TearDown();
  }
  std::unique_ptr<OutageStore> outage_;
};

TEST_F(StoreOutageTest, ADeploymentHoldsItsStepThroughAnOutageAndThenSucceeds) {
  ASSERT_EQ(deploy_and_wait("v1").state, DeploymentState::kSucceeded);
  const std::string id = deploy("v2");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_event(id, "step_started", 2));  // under way
  outage_->down = true;
  // Four refused writes: the runner kept trying with backoff (200 + 400 + 800 ms), longer
  // than the rest of the plan's steps, which would have ended meanwhile without the hold.
  ASSERT_TRUE(testing::wait_until([&] { return outage_->refused.load() >= 4; }))
      << "the runner stopped trying: " << outage_->refused.load() << " writes refused";
  // Meanwhile, in the store: still in progress, never failed or rolled back.
  auto held = store_->get_deployment(id);
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(is_final(held->state)) << held->state << ": " << held->reason;
  EXPECT_NE(held->state, DeploymentState::kRollingBack);
  outage_->down = false;
  auto d = engine_->wait_final(id, std::chrono::seconds(30));
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->state, DeploymentState::kSucceeded) << d->reason;
  // No step was recorded twice as finished because of the retries.
  auto events = store_->list_events(id, 0, 1000);
  // The same runner carried on: it never gave up and was started again (which records
  // `resumed`, or rolls back under rollback_policy: rollback).
  std::map<int, int> finished;
  for (const auto& e : *events) {
    if (e.type == EventType::kStepFinished) ++finished[e.step];
    EXPECT_NE(e.type, EventType::kResumed) << e.message;
    EXPECT_NE(e.type, EventType::kRollbackStarted) << e.message;
  }
  for (const auto& [step, n] : finished) EXPECT_EQ(n, 1) << "step " << step;
}

// A runner that ends because the engine stops must not be started again by a supervisor
// round that listed the open deployments just before: that runner would never be told to
// stop, and stop() (a restart, a leader stepping down) would wait on it forever.
TEST_F(StoreOutageTest, StopDoesNotWaitForeverOnARunnerStartedFromAStaleList) {
  config_.apps[0].strategy.steps[1].pause_ms = 60000;  // the runner stays at the pause
  start_outage_engine();
  ASSERT_EQ(deploy_and_wait("v1").state, DeploymentState::kSucceeded);
  const std::string id = deploy("v2");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_event(id, "step_started", 2));  // at the long pause
  outage_->hold_next_open_list();
  ASSERT_TRUE(testing::wait_until([&] { return outage_->held(); }));  // the stale list: v2 open
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    engine_->stop();
    stopped = true;
  });
  // The runner ends (told to stop); the supervisor still holds a list that says v2 is open.
  EXPECT_TRUE(testing::wait_until([&] { return engine_->rounds(id) == -1; }));
  outage_->release_list();
  const bool ok = testing::wait_until([&] { return stopped.load(); });
  EXPECT_TRUE(ok) << "stop() waits on a runner started after it began";
  if (!ok) (void)engine_->abort(id, "test");  // free the stray runner so the test can end
  stopper.join();
  // Nothing took the deployment up while the engine stopped: it waits, at its step, for
  // the next start to resume it.
  auto d = store_->get_deployment(id);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(is_final(d->state)) << "a runner started during stop() took it to " << d->state
                                   << ": " << d->reason;
  auto events = store_->list_events(id, 0, 1000);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) EXPECT_NE(e.type, EventType::kResumed) << e.message;
}

}  // namespace
}  // namespace ferry
