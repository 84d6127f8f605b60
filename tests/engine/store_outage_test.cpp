// A store outage (PostgreSQL restarting) in the middle of a deployment: the deployment
// holds its step instead of failing, and goes on when the store is back.
#include <atomic>
#include <map>

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
  std::string restore_steps() const override { return real_->restore_steps(); }
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
    FERRY_OUTAGE_FORWARD(list_deployments(f));
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
};

class StoreOutageTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    outage_ = std::make_unique<OutageStore>(store_.get());
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

}  // namespace
}  // namespace ferry
