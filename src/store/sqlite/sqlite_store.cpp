#include "store/sqlite/sqlite_store.h"

#include <filesystem>

#include "store/schema.h"
#include "store/sqlite/migrations.h"

namespace ferry {

using schema::kAuditCols;
using schema::kDeploymentCols;
using schema::kReleaseCols;
using schema::kTokenCols;
using sqlite::Statement;
using sqlite::Transaction;

namespace {

Json json_column(const Statement& s, int col) {
  auto j = Json::parse(s.text(col), nullptr, false);
  return j.is_discarded() ? Json() : j;
}

ReleaseRecord read_release(const Statement& s) {
  ReleaseRecord r;
  r.app = s.text(0);
  r.version = s.text(1);
  r.git_sha = s.text(2);
  r.artifact = s.text(3);
  r.config = json_column(s, 4);
  r.scan_status = s.text(5);
  r.scan_summary = json_column(s, 6);
  r.created_by = s.text(7);
  r.created_at_ms = s.integer(8);
  return r;
}

// A state or event name the lifecycle does not know means the row was not written by
// this version of ferry: an error naming the row, never a guess.
Result<DeploymentRecord> read_deployment(const Statement& s) {
  DeploymentRecord d;
  d.id = s.text(0);
  d.app = s.text(1);
  d.env = s.text(2);
  d.release = s.text(3);
  d.previous_release = s.text(4);
  const std::string state = s.text(5);
  auto parsed = parse_deployment_state(state);
  if (!parsed)
    return internal_error("deployment " + d.id + " has unknown state '" + state +
                          "' in the store (written by a newer ferry?)");
  d.state = *parsed;
  d.strategy = s.text(6);
  d.plan = json_column(s, 7);
  d.current_step = static_cast<int>(s.integer(8));
  d.step_state = s.text(9);
  d.reason = s.text(10);
  d.requested_by = s.text(11);
  d.generation = s.integer(12);
  d.created_at_ms = s.integer(13);
  d.updated_at_ms = s.integer(14);
  d.finished_at_ms = s.integer(15);
  d.version = s.integer(16);
  return d;
}
Result<DeploymentEvent> read_event(const Statement& q) {
  DeploymentEvent e;
  e.seq = q.integer(0);
  e.deployment_id = q.text(1);
  e.time_ms = q.integer(2);
  const std::string type = q.text(3);
  auto parsed = parse_event_type(type);
  if (!parsed)
    return internal_error("event " + std::to_string(e.seq) + " has unknown type '" + type +
                          "' in the store (written by a newer ferry?)");
  e.type = *parsed;
  e.step = static_cast<int>(q.integer(4));
  e.message = q.text(5);
  e.data = json_column(q, 6);
  return e;
}

AuditRecord read_audit(const Statement& s) {
  AuditRecord a;
  a.seq = s.integer(0);
  a.time_ms = s.integer(1);
  a.actor = s.text(2);
  a.action = s.text(3);
  a.app = s.text(4);
  a.env = s.text(5);
  a.release = s.text(6);
  a.git_sha = s.text(7);
  a.source_addr = s.text(8);
  a.details = json_column(s, 9);
  a.prev_hash = s.text(10);
  a.hash = s.text(11);
  return a;
}

TokenRecord read_token(const Statement& s) {
  TokenRecord t;
  t.id = s.text(0);
  t.name = s.text(1);
  t.hash = s.text(2);
  t.role = s.text(3);
  auto envs = json_column(s, 4);
  if (envs.is_array()) t.envs = envs.get<std::vector<std::string>>();
  t.created_by = s.text(5);
  t.created_at_ms = s.integer(6);
  t.expires_at_ms = s.integer(7);
  t.revoked = s.integer(8) != 0;
  return t;
}

}  // namespace

namespace {

// The quick check at open must not hold a server start for long on a big file.
constexpr int64_t kOpenCheckMs = 3000;
constexpr int kMaxProblems = 20;

}  // namespace

std::string SqliteStore::sqlite_restore_steps() {
  return "restore it: stop `ferry server`, run `ferry store check` to see the damage, move the "
         "damaged file (and its -wal and -shm files) aside, copy the newest backup in its "
         "place, run `ferry store check` again and start the server (docs/runbook.md, "
         "\"The store is corrupted\")";
}

Result<std::vector<std::string>> SqliteStore::check_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return not_found("store file " + path + " does not exist");
  auto db = sqlite::Database::open(path);
  // A file SQLite cannot even open as a database is damaged beyond a check.
  if (!db.ok()) return std::vector<std::string>{db.status().message()};
  return (*db)->check(true, 100, 0);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  auto db = sqlite::Database::open(path);
  if (!db.ok()) return db.status();
  // Damage found here is kept in health(); running out of time is not damage.
  (void)(*db)->check(false, kMaxProblems, kOpenCheckMs);
  auto v = sqlite::migrate(**db);
  if (!v.ok()) {
    Status h = (*db)->health();
    if (!h.ok()) return unavailable(h.message() + " in " + path + "; " + sqlite_restore_steps());
    return v.status().with_context("migrating " + path);
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(*db), path));
}

Status SqliteStore::health() {
  Status h = db_->health();
  if (h.ok()) return h;
  return unavailable(h.message() + " (" + path_ + ")");
}

Result<std::vector<std::string>> SqliteStore::check() {
  std::lock_guard lock(mu_);
  return db_->check(true, 100, 0);
}

Result<int> SqliteStore::schema_version() {
  std::lock_guard lock(mu_);
  Statement q(*db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (q.step()) return static_cast<int>(q.integer(0));
  return q.status().ok() ? Result<int>(0) : Result<int>(q.status());
}

Status SqliteStore::create_release(const ReleaseRecord& r) {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "INSERT INTO releases (app, version, git_sha, artifact, config, scan_status, "
              "scan_summary, created_by, created_at_ms) VALUES (?,?,?,?,?,?,?,?,?)");
  q.bind(1, r.app)
      .bind(2, r.version)
      .bind(3, r.git_sha)
      .bind(4, r.artifact)
      .bind(5, dump_json(r.config))
      .bind(6, r.scan_status)
      .bind(7, dump_json(r.scan_summary))
      .bind(8, r.created_by)
      .bind(9, r.created_at_ms);
  Status s = q.exec();
  if (s.code() == Code::kAlreadyExists)
    return already_exists("release " + r.app + "@" + r.version +
                          " already exists; releases are immutable, use a new version");
  return s;
}

Result<ReleaseRecord> SqliteStore::get_release(const std::string& app, const std::string& version) {
  std::lock_guard lock(mu_);
  Statement q(
      *db_, std::string("SELECT ") + kReleaseCols + " FROM releases WHERE app = ? AND version = ?");
  q.bind(1, app).bind(2, version);
  if (q.step()) return read_release(q);
  FERRY_RETURN_IF_ERROR(q.status());
  return not_found("release " + app + "@" + version + " does not exist (see `ferry releases " +
                   app + "`)");
}

Result<std::vector<ReleaseRecord>> SqliteStore::list_releases(const std::string& app, int limit) {
  std::lock_guard lock(mu_);
  Statement q(*db_, std::string("SELECT ") + kReleaseCols +
                        " FROM releases WHERE app = ? ORDER BY created_at_ms DESC, "
                        "rowid DESC LIMIT ?");
  q.bind(1, app).bind(2, limit);
  std::vector<ReleaseRecord> out;
  while (q.step()) out.push_back(read_release(q));
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::update_release_scan(const std::string& app, const std::string& version,
                                        const std::string& scan_status, const Json& summary) {
  std::lock_guard lock(mu_);
  Statement q(
      *db_, "UPDATE releases SET scan_status = ?, scan_summary = ? WHERE app = ? AND version = ?");
  q.bind(1, scan_status).bind(2, dump_json(summary)).bind(3, app).bind(4, version);
  FERRY_RETURN_IF_ERROR(q.exec());
  if (db_->changes() == 0) return not_found("release " + app + "@" + version + " does not exist");
  return Status::Ok();
}

Status SqliteStore::insert_event_locked(const DeploymentEvent& e, int64_t* seq) {
  Statement q(*db_,
              "INSERT INTO deployment_events (deployment_id, time_ms, type, step, message, data) "
              "VALUES (?,?,?,?,?,?)");
  q.bind(1, e.deployment_id)
      .bind(2, e.time_ms)
      .bind(3, to_string(e.type))
      .bind(4, e.step)
      .bind(5, e.message)
      .bind(6, dump_json(e.data));
  FERRY_RETURN_IF_ERROR(q.exec());
  if (seq) *seq = db_->last_insert_rowid();
  return Status::Ok();
}

Status SqliteStore::create_deployment(const DeploymentRecord& d, const DeploymentEvent& created) {
  std::lock_guard lock(mu_);
  // BEGIN IMMEDIATE holds every other writer off until commit, so the checks below and
  // the insert see the same rows; the unique index deployments_one_active stays as the
  // schema's own guard.
  Transaction tx(*db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  {
    Statement rel(*db_, "SELECT 1 FROM releases WHERE app = ? AND version = ?");
    rel.bind(1, d.app).bind(2, d.release);
    const bool found = rel.step();
    FERRY_RETURN_IF_ERROR(rel.status());
    if (!found)
      return not_found("release " + d.app + "@" + d.release + " does not exist (see `ferry " +
                       "releases " + d.app + "`)");
  }
  if (!is_final(d.state)) {
    Statement open(*db_, "SELECT 1 FROM deployments WHERE app = ? AND env = ? AND state NOT IN (" +
                             schema::final_states_sql() + ")");
    open.bind(1, d.app).bind(2, d.env);
    const bool busy = open.step();
    FERRY_RETURN_IF_ERROR(open.status());
    if (busy) return schema::active_deployment_exists(d.app, d.env);
  }
  Statement q(*db_, std::string("INSERT INTO deployments (") + kDeploymentCols +
                        ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  q.bind(1, d.id)
      .bind(2, d.app)
      .bind(3, d.env)
      .bind(4, d.release)
      .bind(5, d.previous_release)
      .bind(6, to_string(d.state))
      .bind(7, d.strategy)
      .bind(8, dump_json(d.plan))
      .bind(9, d.current_step)
      .bind(10, d.step_state)
      .bind(11, d.reason)
      .bind(12, d.requested_by)
      .bind(13, d.generation)
      .bind(14, d.created_at_ms)
      .bind(15, d.updated_at_ms)
      .bind(16, d.finished_at_ms)
      .bind(17, int64_t{1});
  Status s = q.exec();
  if (s.code() == Code::kAlreadyExists) return already_exists("deployment " + d.id + " exists");
  FERRY_RETURN_IF_ERROR(s);
  DeploymentEvent e = created;
  e.deployment_id = d.id;
  FERRY_RETURN_IF_ERROR(insert_event_locked(e, nullptr));
  return tx.commit();
}

Status SqliteStore::update_deployment(DeploymentRecord& d,
                                      const std::vector<DeploymentEvent>& events) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  Statement q(*db_,
              "UPDATE deployments SET state=?, plan=?, current_step=?, step_state=?, reason=?, "
              "generation=?, updated_at_ms=?, finished_at_ms=?, previous_release=?, "
              "version=version+1 WHERE id=? AND version=?");
  q.bind(1, to_string(d.state))
      .bind(2, dump_json(d.plan))
      .bind(3, d.current_step)
      .bind(4, d.step_state)
      .bind(5, d.reason)
      .bind(6, d.generation)
      .bind(7, d.updated_at_ms)
      .bind(8, d.finished_at_ms)
      .bind(9, d.previous_release)
      .bind(10, d.id)
      .bind(11, d.version);
  FERRY_RETURN_IF_ERROR(q.exec());
  if (db_->changes() == 0)
    return conflict("deployment " + d.id + " changed since it was read (version " +
                    std::to_string(d.version) + "); read it again");
  for (const auto& e : events) {
    DeploymentEvent ev = e;
    ev.deployment_id = d.id;
    FERRY_RETURN_IF_ERROR(insert_event_locked(ev, nullptr));
  }
  FERRY_RETURN_IF_ERROR(tx.commit());
  ++d.version;
  return Status::Ok();
}

Result<DeploymentRecord> SqliteStore::get_deployment(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement q(*db_, std::string("SELECT ") + kDeploymentCols + " FROM deployments WHERE id = ?");
  q.bind(1, id);
  if (q.step()) return read_deployment(q);
  FERRY_RETURN_IF_ERROR(q.status());
  return not_found("deployment " + id + " does not exist");
}

Result<std::vector<DeploymentRecord>> SqliteStore::list_deployments(const DeploymentFilter& f) {
  std::lock_guard lock(mu_);
  // Only the filters given, so SQLite can search an index: "(? = '' OR app = ?)" made it
  // scan every deployment ever made. The active filter is written as the partial index
  // deployments_one_active is, so it is searched there (bounded by what is in flight).
  std::string sql = std::string("SELECT ") + kDeploymentCols + " FROM deployments WHERE 1";
  if (!f.app.empty()) sql += " AND app = ?";
  if (!f.env.empty()) sql += " AND env = ?";
  if (f.active_only) sql += " AND state NOT IN (" + schema::final_states_sql() + ")";
  sql += " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?";
  Statement q(*db_, sql);
  int i = 0;
  if (!f.app.empty()) q.bind(++i, f.app);
  if (!f.env.empty()) q.bind(++i, f.env);
  q.bind(++i, f.limit);
  std::vector<DeploymentRecord> out;
  while (q.step()) {
    auto d = read_deployment(q);
    if (!d.ok()) return d.status();
    out.push_back(std::move(*d));
  }
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Result<int64_t> SqliteStore::append_event(const DeploymentEvent& e) {
  std::lock_guard lock(mu_);
  int64_t seq = 0;
  FERRY_RETURN_IF_ERROR(insert_event_locked(e, &seq));
  return seq;
}

Result<std::vector<DeploymentEvent>> SqliteStore::list_events(const std::string& deployment_id,
                                                              int64_t after_seq, int limit) {
  std::lock_guard lock(mu_);
  // One deployment's events are searched in deployment_events_dep; "(? = '' OR
  // deployment_id = ?)" scanned every event of every deployment after `after_seq`.
  const bool one = !deployment_id.empty();
  Statement q(*db_, std::string("SELECT ") + schema::kEventCols + " FROM deployment_events WHERE " +
                        (one ? "deployment_id = ? AND " : "") + "seq > ? ORDER BY seq LIMIT ?");
  int i = 0;
  if (one) q.bind(++i, deployment_id);
  q.bind(++i, after_seq);
  q.bind(++i, limit);
  std::vector<DeploymentEvent> out;
  while (q.step()) {
    auto e = read_event(q);
    if (!e.ok()) return e.status();
    out.push_back(std::move(*e));
  }
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::set_env_release(const EnvReleaseRecord& r) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  Statement q(*db_, "INSERT OR REPLACE INTO env_releases VALUES (?,?,?,?,?)");
  q.bind(1, r.app).bind(2, r.env).bind(3, r.release).bind(4, r.deployment_id).bind(5, r.at_ms);
  FERRY_RETURN_IF_ERROR(q.exec());
  Statement s(*db_, "INSERT OR IGNORE INTO release_successes VALUES (?,?,?,?)");
  s.bind(1, r.app).bind(2, r.release).bind(3, r.env).bind(4, r.at_ms);
  FERRY_RETURN_IF_ERROR(s.exec());
  return tx.commit();
}

Result<std::vector<EnvReleaseRecord>> SqliteStore::list_env_releases(const std::string& app) {
  std::lock_guard lock(mu_);
  Statement q(*db_, app.empty()
                        ? "SELECT app, env, release, deployment_id, at_ms FROM env_releases "
                          "ORDER BY app, env"
                        : "SELECT app, env, release, deployment_id, at_ms FROM env_releases "
                          "WHERE app = ? ORDER BY app, env");
  if (!app.empty()) q.bind(1, app);
  std::vector<EnvReleaseRecord> out;
  while (q.step()) out.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4)});
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Result<bool> SqliteStore::release_succeeded_in(const std::string& app, const std::string& release,
                                               const std::string& env) {
  std::lock_guard lock(mu_);
  Statement q(*db_, "SELECT 1 FROM release_successes WHERE app = ? AND release = ? AND env = ?");
  q.bind(1, app).bind(2, release).bind(3, env);
  const bool found = q.step();
  FERRY_RETURN_IF_ERROR(q.status());
  return found;
}

Status SqliteStore::put_agent_desired(const AgentDesiredRecord& r) {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "INSERT INTO agent_desired VALUES (?,?,?,?,?,?,?) ON CONFLICT (agent, app, env) DO "
              "UPDATE SET generation = excluded.generation, spec = excluded.spec, deployment_id "
              "= excluded.deployment_id, updated_at_ms = excluded.updated_at_ms WHERE "
              "excluded.generation >= agent_desired.generation");
  q.bind(1, r.agent)
      .bind(2, r.app)
      .bind(3, r.env)
      .bind(4, r.generation)
      .bind(5, dump_json(r.spec))
      .bind(6, r.deployment_id)
      .bind(7, r.updated_at_ms);
  return q.exec();
}

Result<std::vector<AgentDesiredRecord>> SqliteStore::list_agent_desired() {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "SELECT agent, app, env, generation, spec, deployment_id, updated_at_ms FROM "
              "agent_desired ORDER BY agent, app, env");
  std::vector<AgentDesiredRecord> out;
  while (q.step()) {
    auto spec = parse_json(q.text(4));
    out.push_back({q.text(0), q.text(1), q.text(2), q.integer(3),
                   spec.ok() ? *spec : Json::object(), q.text(5), q.integer(6)});
  }
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::create_token(const TokenRecord& t) {
  std::lock_guard lock(mu_);
  Statement q(*db_, "INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?,?)");
  q.bind(1, t.id)
      .bind(2, t.name)
      .bind(3, t.hash)
      .bind(4, t.role)
      .bind(5, dump_json(Json(t.envs)))
      .bind(6, t.created_by)
      .bind(7, t.created_at_ms)
      .bind(8, t.expires_at_ms)
      .bind(9, t.revoked);
  return q.exec();
}

Result<TokenRecord> SqliteStore::get_token(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement q(*db_, std::string("SELECT ") + kTokenCols + " FROM tokens WHERE id = ?");
  q.bind(1, id);
  if (q.step()) return read_token(q);
  FERRY_RETURN_IF_ERROR(q.status());
  return not_found("token " + id + " does not exist");
}

Result<std::vector<TokenRecord>> SqliteStore::list_tokens() {
  std::lock_guard lock(mu_);
  Statement q(*db_, std::string("SELECT ") + kTokenCols + " FROM tokens ORDER BY created_at_ms");
  std::vector<TokenRecord> out;
  while (q.step()) out.push_back(read_token(q));
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::revoke_token(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement q(*db_, "UPDATE tokens SET revoked = 1 WHERE id = ?");
  q.bind(1, id);
  FERRY_RETURN_IF_ERROR(q.exec());
  if (db_->changes() == 0) return not_found("token " + id + " does not exist");
  return Status::Ok();
}

Result<AuditRecord> SqliteStore::append_audit(AuditRecord a,
                                              const std::function<void(AuditRecord&)>& seal) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  {
    Statement last(*db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (last.step()) {
      a.seq = last.integer(0) + 1;
      a.prev_hash = last.text(1);
    } else {
      a.seq = 1;
      a.prev_hash = std::string(64, '0');
    }
    FERRY_RETURN_IF_ERROR(last.status());
  }
  seal(a);
  Statement q(*db_, "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  q.bind(1, a.seq)
      .bind(2, a.time_ms)
      .bind(3, a.actor)
      .bind(4, a.action)
      .bind(5, a.app)
      .bind(6, a.env)
      .bind(7, a.release)
      .bind(8, a.git_sha)
      .bind(9, a.source_addr)
      .bind(10, dump_json(a.details))
      .bind(11, a.prev_hash)
      .bind(12, a.hash);
  FERRY_RETURN_IF_ERROR(q.exec());
  FERRY_RETURN_IF_ERROR(tx.commit());
  return a;
}

Result<std::vector<AuditRecord>> SqliteStore::list_audit(int64_t after_seq, int limit) {
  std::lock_guard lock(mu_);
  Statement q(
      *db_, std::string("SELECT ") + kAuditCols + " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
  q.bind(1, after_seq).bind(2, limit);
  std::vector<AuditRecord> out;
  while (q.step()) out.push_back(read_audit(q));
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Result<AuditRecord> SqliteStore::audit_head() {
  std::lock_guard lock(mu_);
  Statement q(db_->handle(),
              std::string("SELECT ") + kAuditCols + " FROM audit ORDER BY seq DESC LIMIT 1");
  AuditRecord out;
  if (q.step()) out = read_audit(q);
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::add_approval(const ApprovalRecord& a) {
  std::lock_guard lock(mu_);
  Statement q(*db_, "INSERT OR REPLACE INTO approvals VALUES (?,?,?,?,?,?)");
  q.bind(1, a.app)
      .bind(2, a.env)
      .bind(3, a.release)
      .bind(4, a.approver)
      .bind(5, a.comment)
      .bind(6, a.at_ms);
  return q.exec();
}

Result<std::vector<ApprovalRecord>> SqliteStore::list_approvals(const std::string& app,
                                                                const std::string& env,
                                                                const std::string& release) {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "SELECT app, env, release, approver, comment, at_ms FROM approvals WHERE app = ? "
              "AND env = ? AND release = ? ORDER BY at_ms");
  q.bind(1, app).bind(2, env).bind(3, release);
  std::vector<ApprovalRecord> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.text(4), q.integer(5)});
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::put_secret(const SecretRecord& s) {
  std::lock_guard lock(mu_);
  Statement q(*db_, "INSERT OR REPLACE INTO secrets VALUES (?,?,?,?,?,?)");
  q.bind(1, s.app)
      .bind(2, s.env)
      .bind(3, s.name)
      .bind(4, s.ciphertext)
      .bind(5, s.updated_at_ms)
      .bind(6, s.updated_by);
  return q.exec();
}

Status SqliteStore::delete_secret(const std::string& app, const std::string& env,
                                  const std::string& name) {
  std::lock_guard lock(mu_);
  Statement q(*db_, "DELETE FROM secrets WHERE app = ? AND env = ? AND name = ?");
  q.bind(1, app).bind(2, env).bind(3, name);
  FERRY_RETURN_IF_ERROR(q.exec());
  if (db_->changes() == 0)
    return not_found("secret " + name + " is not set for " + app + " in " + env);
  return Status::Ok();
}

Result<std::vector<SecretRecord>> SqliteStore::list_secrets(const std::string& app,
                                                            const std::string& env) {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "SELECT app, env, name, ciphertext, updated_at_ms, updated_by FROM secrets WHERE "
              "app = ? AND env = ? ORDER BY name");
  q.bind(1, app).bind(2, env);
  std::vector<SecretRecord> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4), q.text(5)});
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

}  // namespace ferry
