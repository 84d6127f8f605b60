// PgStore: the Store on PostgreSQL (libpq), for teams that run the control plane off one
// machine. The same semantics as SqliteStore: versioned migrations, one transaction per
// method, the one-deployment-in-progress rule as a constraint, an append-only audit chain
// (serialised by an advisory lock, so servers sharing the database never fork it), event
// sequence numbers that increase in commit order, optimistic deployment updates.
//
// One connection behind a mutex. When PostgreSQL goes away (a restart, a network
// outage) every method answers kUnavailable at once, naming the outage; the connection is
// re-made on the next call after a backoff (100 ms doubling to 5 s), so callers retry on
// their own schedule and the database is not hammered while it starts.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "common/thread_annotations.h"
#include "store/postgres/pg.h"
#include "store/store.h"

namespace ferry {

class PgStore final : public Store {
 public:
  // Connects to `url` (postgres://user[:password]@host[:port]/db?...) and migrates.
  // kUnavailable when the server cannot be reached; the url's password never appears in
  // an error.
  static Result<std::unique_ptr<PgStore>> open(const std::string& url);
  // `ferry store check` on PostgreSQL: connects and checks the schema without migrating.
  static Result<std::vector<std::string>> check_url(const std::string& url);

  Result<int> schema_version() override;
  Status health() override;
  Result<std::vector<std::string>> check() override;
  std::string restore_steps() const override { return pg_restore_steps(); }
  // The restore steps of a PostgreSQL store (store.h).
  static std::string pg_restore_steps();
  Result<LeaderLease> try_lead(const std::string& holder, const std::string& address,
                               int64_t ttl_ms, int64_t token) override;
  Result<LeaderLease> leader_lease() override;
  Status resign(const std::string& holder, int64_t token) override;
  // `on_fenced` runs inside the refused write, with the store's mutex held: it must not
  // call the store (the elector only sets a flag and wakes its thread).
  void set_fencing_token(int64_t token, std::function<void()> on_fenced) override;
  Status create_release(const ReleaseRecord& r) override;
  Result<ReleaseRecord> get_release(const std::string& app, const std::string& version) override;
  Result<std::vector<ReleaseRecord>> list_releases(const std::string& app, int limit) override;
  Status update_release_scan(const std::string& app, const std::string& version,
                             const std::string& scan_status, const Json& summary) override;
  Status create_deployment(const DeploymentRecord& d, const DeploymentEvent& created) override;
  Status update_deployment(DeploymentRecord& d,
                           const std::vector<DeploymentEvent>& events) override;
  Result<DeploymentRecord> get_deployment(const std::string& id) override;
  Result<std::vector<DeploymentRecord>> list_deployments(const DeploymentFilter& f) override;
  Result<int64_t> append_event(const DeploymentEvent& e) override;
  Result<std::vector<DeploymentEvent>> list_events(const std::string& deployment_id,
                                                   int64_t after_seq, int limit) override;
  Status set_env_release(const EnvReleaseRecord& r) override;
  Result<std::vector<EnvReleaseRecord>> list_env_releases(const std::string& app) override;
  Status put_agent_desired(const AgentDesiredRecord& r) override;
  Result<std::vector<AgentDesiredRecord>> list_agent_desired() override;
  Result<bool> release_succeeded_in(const std::string& app, const std::string& release,
                                    const std::string& env) override;
  Status create_token(const TokenRecord& t) override;
  Result<TokenRecord> get_token(const std::string& id) override;
  Result<std::vector<TokenRecord>> list_tokens() override;
  Status revoke_token(const std::string& id) override;
  Result<AuditRecord> append_audit(AuditRecord a,
                                   const std::function<void(AuditRecord&)>& seal) override;
  Result<std::vector<AuditRecord>> list_audit(int64_t after_seq, int limit) override;
  Result<AuditRecord> audit_head() override;
  Status add_approval(const ApprovalRecord& a) override;
  Result<std::vector<ApprovalRecord>> list_approvals(const std::string& app, const std::string& env,
                                                     const std::string& release) override;
  Status put_secret(const SecretRecord& s) override;
  Status delete_secret(const std::string& app, const std::string& env,
                       const std::string& name) override;
  Result<std::vector<SecretRecord>> list_secrets(const std::string& app,
                                                 const std::string& env) override;

  Status add_slo_counts(const std::vector<SloBucketRecord>& deltas,
                        const std::vector<SloCursorRecord>& cursors) override;
  Result<std::vector<SloBucketRecord>> list_slo_buckets(const std::string& app,
                                                        const std::string& env, int64_t from_ms,
                                                        int64_t to_ms) override;
  Result<std::vector<SloCursorRecord>> list_slo_cursors() override;
  Status compact_slo(int64_t hours_before_ms, int64_t drop_before_ms,
                     int64_t cursors_before_ms) override;

 private:
  using Clock = std::chrono::steady_clock;
  // Adds `d` onto its stored bucket, inside a write's transaction.
  Status add_slo_bucket(pg::Connection& c, const SloBucketRecord& d);
  PgStore(std::string url, std::unique_ptr<pg::Connection> c)
      : url_(std::move(url)), conn_(std::move(c)) {}

  // The live connection, re-made when the old one is gone and the backoff allows;
  // nullptr with `why` set while PostgreSQL is unreachable.
  pg::Connection* connection(Status* why) FERRY_REQUIRES(mu_);
  // After a statement: a kUnavailable result drops the connection and starts the backoff.
  void after(const Status& s) FERRY_REQUIRES(mu_);

  // Runs `body(conn)` with the connection, under the mutex; any kUnavailable outcome
  // resets the connection. `body` returns a Status or a Result<T>.
  template <typename F>
  auto run(F&& body) -> decltype(body(std::declval<pg::Connection&>()));
  // run() for a one-statement write: in a transaction, after the fencing check.
  template <typename F>
  auto write(F&& body) -> decltype(body(std::declval<pg::Connection&>()));
  // Inside a write's transaction: ok when no fencing token is set or the lease still has
  // it (the lease row stays share-locked until commit, so a takeover waits for this
  // write and every later write sees the new token); else kUnavailable and on_fenced.
  Status check_fence(pg::Connection& c);

  const std::string url_;
  Mutex mu_;
  std::unique_ptr<pg::Connection> conn_ FERRY_GUARDED_BY(mu_);
  Clock::time_point next_attempt_ FERRY_GUARDED_BY(mu_){};
  std::chrono::milliseconds backoff_ FERRY_GUARDED_BY(mu_){0};
  Status last_outage_ FERRY_GUARDED_BY(mu_);
  std::atomic<int64_t> fence_{0};
  Mutex fence_mu_;
  std::function<void()> on_fenced_ FERRY_GUARDED_BY(fence_mu_);
};

}  // namespace ferry
