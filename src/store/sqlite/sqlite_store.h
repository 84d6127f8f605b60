// SqliteStore: the embedded default Store. One connection behind a mutex (SQLite
// serialises writers anyway), WAL and synchronous=FULL, migrations on open.
#pragma once

#include <memory>
#include <mutex>

#include "store/sqlite/db.h"
#include "store/store.h"

namespace ferry {

class SqliteStore final : public Store {
 public:
  // Opens (creating it and its folder if missing) and migrates the file at `path`.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  // A full integrity check of the file without migrating or creating it (check_store).
  static Result<std::vector<std::string>> check_file(const std::string& path);

  Result<int> schema_version() override;
  Status health() override;
  Result<std::vector<std::string>> check() override;
  std::string restore_steps() const override { return sqlite_restore_steps(); }
  // The restore steps of a SQLite store file (store.h).
  static std::string sqlite_restore_steps();
  // The work the queries of this store did so far (sqlite::Database::vm_steps).
  int64_t vm_steps() const { return db_->vm_steps(); }
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
  Result<bool> release_succeeded_in(const std::string& app, const std::string& release,
                                    const std::string& env) override;
  Status put_agent_desired(const AgentDesiredRecord& r) override;
  Result<std::vector<AgentDesiredRecord>> list_agent_desired() override;
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
  SqliteStore(std::unique_ptr<sqlite::Database> db, std::string path)
      : db_(std::move(db)), path_(std::move(path)) {}
  Status insert_event_locked(const DeploymentEvent& e, int64_t* seq);
  // Adds `d` onto its stored bucket (sqlite_slo.cpp); mu_ held, inside a transaction.
  Status add_slo_bucket_locked(const SloBucketRecord& d);

  std::mutex mu_;
  std::unique_ptr<sqlite::Database> db_;
  std::string path_;
};

}  // namespace ferry
