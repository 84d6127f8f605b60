// Store: the durable state of the control plane. Every method is one transaction;
// a state change and the event that records it commit together or not at all.
// Implementations: sqlite/ (embedded default), postgres/; open_store picks one by URL.
// Every method may be called from any thread at any time. Any method may fail with
// kUnavailable when the database cannot be reached; nothing was written then (a write
// whose commit was in flight when the connection dropped may have landed: callers read
// again before retrying one).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/records.h"

namespace ferry {

// The leader lease of several servers sharing one database (server/leader.h). `token` is
// the fencing token: it grows by one every time the lease changes hands, never otherwise.
struct LeaderLease {
  std::string holder;   // the holding server's id ("" before the first election)
  std::string address;  // where the holder serves the API (writes are forwarded there)
  int64_t token = 0;
  int64_t remaining_ms = 0;  // until it lapses, by the database's clock; <= 0 lapsed
};

class Store {
 public:
  virtual ~Store() = default;

  // The schema version after migrations (tests, `ferry server --check`).
  virtual Result<int> schema_version() = 0;

  // Ok, or kUnavailable naming the damage found in the store's file: by the bounded
  // quick check when it was opened, or by any statement since. It stays until the
  // process restarts. The store keeps answering; the engine refuses new deployments
  // while it is not ok and /health/ready reports it.
  virtual Status health() = 0;
  // A full integrity check now (unbounded time): the problems found, empty when sound.
  virtual Result<std::vector<std::string>> check() = 0;
  // What an operator does about a damaged store of this kind (the restore steps).
  virtual std::string restore_steps() const = 0;

  // Leadership, for several servers on one database (PostgreSQL; server/leader.h). The
  // lease's expiry is kept by the database's clock, so servers' clocks need not agree.
  //
  // try_lead takes the lease for `holder` when it has lapsed or `holder` holds it, and
  // makes it run `ttl_ms` from now. The token stays when `holder` held it with `token` (a
  // renewal); otherwise it grows by one (a new term). The lease after the attempt is
  // returned: holder == `holder` means this server leads with the returned token; another
  // holder means it does not (a renewal that finds another holder has lost the lease).
  // kFailedPrecondition on a store without leases (SQLite: one server per data dir,
  // server/data_dir_lock.h).
  virtual Result<LeaderLease> try_lead(const std::string& holder, const std::string& address,
                                       int64_t ttl_ms, int64_t token) {
    (void)holder, (void)address, (void)ttl_ms, (void)token;
    return failed_precondition("leader election needs a PostgreSQL store");
  }
  // The lease as stored now.
  virtual Result<LeaderLease> leader_lease() {
    return failed_precondition("leader election needs a PostgreSQL store");
  }
  // Ends `holder`'s lease at once (a clean stop) so a standby need not wait for it to
  // lapse. No-op when `holder` does not hold it with `token`.
  virtual Status resign(const std::string& holder, int64_t token) {
    (void)holder, (void)token;
    return Status::Ok();
  }
  // Fencing: with token > 0, every write of this store object first checks, inside its
  // transaction and with the lease row locked against a takeover, that the lease's token
  // is still `token`; when it is not, nothing is written, the write fails with
  // kUnavailable ("no longer the leader") and `on_fenced` runs (once per refusal, on the
  // writing thread). token 0 turns the check off (a standby's own writes). Thread-safe.
  virtual void set_fencing_token(int64_t token, std::function<void()> on_fenced) {
    (void)token, (void)on_fenced;
  }

  // Releases. create_release fails with kAlreadyExists for a known app+version.
  virtual Status create_release(const ReleaseRecord& r) = 0;
  virtual Result<ReleaseRecord> get_release(const std::string& app, const std::string& version) = 0;
  // Newest first.
  virtual Result<std::vector<ReleaseRecord>> list_releases(const std::string& app, int limit) = 0;
  virtual Status update_release_scan(const std::string& app, const std::string& version,
                                     const std::string& scan_status, const Json& summary) = 0;

  // Deployments.
  //
  // The one-deployment-in-progress rule: per app and environment at most one deployment
  // is in a state that is not final (is_final, core/deployment_state.h). The store keeps
  // it with a constraint (the unique index deployments_one_active), so two creators
  // racing, even on two servers sharing one PostgreSQL, cannot both succeed.
  // create_deployment inserts `d` with version 1 and appends `created` in one
  // transaction. Errors a caller must handle:
  //   kFailedPrecondition  another deployment of d.app to d.env is in progress (the rule);
  //                        the message says to wait for it or abort it
  //   kNotFound            the release d.app@d.release does not exist
  //   kAlreadyExists       a deployment with d.id exists
  //   kUnavailable         the database cannot be reached (PostgreSQL); nothing written
  //
  // update_deployment writes `d` only if the stored version equals d.version (else
  // kConflict: read it again), bumps it (and d.version), and appends `events` in the same
  // transaction.
  virtual Status create_deployment(const DeploymentRecord& d, const DeploymentEvent& created) = 0;
  virtual Status update_deployment(DeploymentRecord& d,
                                   const std::vector<DeploymentEvent>& events = {}) = 0;
  virtual Result<DeploymentRecord> get_deployment(const std::string& id) = 0;
  // Newest first.
  virtual Result<std::vector<DeploymentRecord>> list_deployments(const DeploymentFilter& f) = 0;
  virtual Result<int64_t> append_event(const DeploymentEvent& e) = 0;
  // Events with seq > after_seq, oldest first; deployment_id "" for all deployments.
  virtual Result<std::vector<DeploymentEvent>> list_events(const std::string& deployment_id,
                                                           int64_t after_seq, int limit) = 0;

  // The stable release of an app in an environment (after a successful deployment).
  virtual Status set_env_release(const EnvReleaseRecord& r) = 0;
  virtual Result<std::vector<EnvReleaseRecord>> list_env_releases(const std::string& app) = 0;
  // Whether `release` has ever succeeded in `env` (lifecycle gate).
  virtual Result<bool> release_succeeded_in(const std::string& app, const std::string& release,
                                            const std::string& env) = 0;

  // Per-agent desired state (the reconciler's). put_agent_desired writes `r` unless the
  // stored generation for (agent, app, env) is higher (then it is a no-op: a late write
  // never undoes a newer one). list_agent_desired: all rows, by agent, app, env.
  virtual Status put_agent_desired(const AgentDesiredRecord& r) = 0;
  virtual Result<std::vector<AgentDesiredRecord>> list_agent_desired() = 0;

  // SLO buckets (docs/slo.md). add_slo_counts adds each of `deltas` onto the stored bucket
  // of the same app, env, width and start (created when missing) and writes `cursors`, all
  // in one transaction: a collector that crashes in between counts nothing twice.
  // list_slo_buckets: the buckets of app and env whose start is in [from_ms, to_ms), oldest
  // first. compact_slo, in one transaction: minute buckets that start before
  // `hours_before_ms` (a whole hour) are merged into hour buckets; buckets that start
  // before `drop_before_ms` and cursors not seen since `cursors_before_ms` are deleted.
  // The defaults fail with kFailedPrecondition (a store that keeps no SLO data).
  virtual Status add_slo_counts(const std::vector<SloBucketRecord>& deltas,
                                const std::vector<SloCursorRecord>& cursors) {
    (void)deltas, (void)cursors;
    return failed_precondition("this store keeps no SLO data");
  }
  virtual Result<std::vector<SloBucketRecord>> list_slo_buckets(const std::string& app,
                                                                const std::string& env,
                                                                int64_t from_ms, int64_t to_ms) {
    (void)app, (void)env, (void)from_ms, (void)to_ms;
    return failed_precondition("this store keeps no SLO data");
  }
  virtual Result<std::vector<SloCursorRecord>> list_slo_cursors() {
    return failed_precondition("this store keeps no SLO data");
  }
  virtual Status compact_slo(int64_t hours_before_ms, int64_t drop_before_ms,
                             int64_t cursors_before_ms) {
    (void)hours_before_ms, (void)drop_before_ms, (void)cursors_before_ms;
    return failed_precondition("this store keeps no SLO data");
  }

  // Tokens.
  virtual Status create_token(const TokenRecord& t) = 0;
  virtual Result<TokenRecord> get_token(const std::string& id) = 0;
  virtual Result<std::vector<TokenRecord>> list_tokens() = 0;
  virtual Status revoke_token(const std::string& id) = 0;

  // Audit: append computes the hash inside the transaction that reads the previous
  // one, so the chain has no forks even with concurrent writers. `seal` receives the
  // entry with seq and prev_hash set and must set hash.
  virtual Result<AuditRecord> append_audit(AuditRecord a,
                                           const std::function<void(AuditRecord&)>& seal) = 0;
  virtual Result<std::vector<AuditRecord>> list_audit(int64_t after_seq, int limit) = 0;
  // The last entry (the chain's head); seq 0 when the log is empty.
  virtual Result<AuditRecord> audit_head() = 0;

  // Approvals.
  virtual Status add_approval(const ApprovalRecord& a) = 0;
  virtual Result<std::vector<ApprovalRecord>> list_approvals(const std::string& app,
                                                             const std::string& env,
                                                             const std::string& release) = 0;

  // Secrets (ciphertext only; encryption is governance's SecretBox).
  virtual Status put_secret(const SecretRecord& s) = 0;
  virtual Status delete_secret(const std::string& app, const std::string& env,
                               const std::string& name) = 0;
  virtual Result<std::vector<SecretRecord>> list_secrets(const std::string& app,
                                                         const std::string& env) = 0;
};

// Whether the store named by `url` is one this binary can open: a known scheme (the table
// in store/store.cpp) and a well-formed rest. `ferry validate` and the config loader's
// callers use it so a store that passes validation also starts. Never echoes a password.
Status validate_store_url(const std::string& url);

// Opens the store named by a URL: "sqlite:PATH" (created with its folder if missing).
// A quick check of the file runs first, bounded in time; damage it finds is kept in
// health(), and open fails only when the schema cannot be read or migrated.
Result<std::unique_ptr<Store>> open_store(const std::string& url);

// `ferry store check`: a full integrity check of the store named by `url` without
// migrating or creating it. The problems found, empty when the file is sound; kNotFound
// when there is no such file.
Result<std::vector<std::string>> check_store(const std::string& url);

// What an operator does about a damaged store named by `url` (the restore steps of its
// backend: a file backup for SQLite, the database's own backups for PostgreSQL).
std::string store_restore_steps(const std::string& url);

}  // namespace ferry
