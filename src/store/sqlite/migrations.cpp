#include "store/sqlite/migrations.h"

namespace ferry::sqlite {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "releases, deployments, events, environment releases",
       R"sql(
CREATE TABLE releases (
  app TEXT NOT NULL, version TEXT NOT NULL, git_sha TEXT NOT NULL DEFAULT '',
  artifact TEXT NOT NULL DEFAULT '', config TEXT NOT NULL DEFAULT '{}',
  scan_status TEXT NOT NULL DEFAULT 'not_scanned', scan_summary TEXT NOT NULL DEFAULT '{}',
  created_by TEXT NOT NULL DEFAULT '', created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (app, version));
CREATE TABLE deployments (
  id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, release TEXT NOT NULL,
  previous_release TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, strategy TEXT NOT NULL,
  plan TEXT NOT NULL DEFAULT '[]', current_step INTEGER NOT NULL DEFAULT -1,
  step_state TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
  requested_by TEXT NOT NULL DEFAULT '', generation INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 1,
  FOREIGN KEY (app, release) REFERENCES releases(app, version));
CREATE INDEX deployments_app_env ON deployments(app, env, created_at_ms);
CREATE INDEX deployments_state ON deployments(state);
CREATE TABLE deployment_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment_id TEXT NOT NULL REFERENCES deployments(id),
  time_ms INTEGER NOT NULL, type TEXT NOT NULL, step INTEGER NOT NULL DEFAULT -1,
  message TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}');
CREATE INDEX deployment_events_dep ON deployment_events(deployment_id, seq);
CREATE TABLE env_releases (
  app TEXT NOT NULL, env TEXT NOT NULL, release TEXT NOT NULL, deployment_id TEXT NOT NULL,
  at_ms INTEGER NOT NULL, PRIMARY KEY (app, env));
CREATE TABLE release_successes (
  app TEXT NOT NULL, release TEXT NOT NULL, env TEXT NOT NULL, at_ms INTEGER NOT NULL,
  PRIMARY KEY (app, release, env));
)sql"},
      {2, "tokens, audit chain, approvals, secrets",
       R"sql(
CREATE TABLE tokens (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, role TEXT NOT NULL,
  envs TEXT NOT NULL DEFAULT '[]', created_by TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  app TEXT NOT NULL DEFAULT '', env TEXT NOT NULL DEFAULT '', release TEXT NOT NULL DEFAULT '',
  git_sha TEXT NOT NULL DEFAULT '', source_addr TEXT NOT NULL DEFAULT '',
  details TEXT NOT NULL DEFAULT '{}', prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
-- append-only: the store never updates or deletes audit rows; these triggers make
-- an accidental UPDATE/DELETE through SQL fail loudly too.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN
  SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN
  SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TABLE approvals (
  app TEXT NOT NULL, env TEXT NOT NULL, release TEXT NOT NULL, approver TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '', at_ms INTEGER NOT NULL,
  PRIMARY KEY (app, env, release, approver));
CREATE TABLE secrets (
  app TEXT NOT NULL, env TEXT NOT NULL, name TEXT NOT NULL, ciphertext TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL, updated_by TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (app, env, name));
)sql"},
      // Two requests racing to deploy the same app to the same environment: the store,
      // not a check-then-insert in the engine, keeps it to one deployment in progress.
      {3, "one deployment in progress per app and environment",
       // The final states come from core/deployment_state.h (what version 3 shipped with).
       schema::one_active_index_sql()},
      // Many hosts: what every agent should run, kept so a reconciler can drive agents
      // that missed a change (a partition, a restart of either side) to it.
      {4, "per-agent desired state",
       R"sql(
CREATE TABLE agent_desired (
  agent TEXT NOT NULL, app TEXT NOT NULL, env TEXT NOT NULL, generation INTEGER NOT NULL,
  spec TEXT NOT NULL DEFAULT '{}', deployment_id TEXT NOT NULL DEFAULT '',
  updated_at_ms INTEGER NOT NULL, PRIMARY KEY (agent, app, env));
)sql"},
      {5, "leader lease",
       R"sql(
-- The same table as PostgreSQL's, so both schemas agree at every version. Unused on
-- SQLite: one server owns the data dir (server/data_dir_lock.h) and always leads.
CREATE TABLE leader_lease (
  id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '', token INTEGER NOT NULL DEFAULT 0,
  expires_at_ms INTEGER NOT NULL DEFAULT 0);
INSERT INTO leader_lease (id) VALUES (1);
)sql"},
      {6, "slo buckets and collector cursors",
       R"sql(
-- docs/slo.md: per-minute (and, compacted, per-hour) request counts of an app in an
-- environment, and the router counters last read per agent and release.
CREATE TABLE slo_buckets (
  app TEXT NOT NULL, env TEXT NOT NULL, width_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
  latency TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (app, env, width_ms, start_ms));
CREATE INDEX slo_buckets_app_env_start ON slo_buckets(app, env, start_ms);
CREATE TABLE slo_cursors (
  agent TEXT NOT NULL, app TEXT NOT NULL, env TEXT NOT NULL, release TEXT NOT NULL,
  counters TEXT NOT NULL DEFAULT '{}', seen_at_ms INTEGER NOT NULL,
  PRIMARY KEY (agent, app, env, release));
)sql"},
  };
  return kMigrations;
}

Result<int> migrate(Database& db) {
  FERRY_RETURN_IF_ERROR(
      db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
              "description TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)"));
  int current = 0;
  {
    Statement q(db.handle(), "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (q.step()) current = static_cast<int>(q.integer(0));
    FERRY_RETURN_IF_ERROR(q.status());
  }
  for (const auto& m : migrations()) {
    if (m.version <= current) continue;
    Transaction tx(db);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    Status s = db.exec(m.sql);
    if (!s.ok())
      return s.with_context("migration " + std::to_string(m.version) + " (" + m.description + ")");
    Statement rec(db.handle(),
                  "INSERT INTO schema_migrations VALUES (?, ?, CAST(strftime('%s','now') AS "
                  "INTEGER) * 1000)");
    rec.bind(1, m.version).bind(2, m.description);
    FERRY_RETURN_IF_ERROR(rec.exec());
    FERRY_RETURN_IF_ERROR(tx.commit());
    current = m.version;
  }
  return current;
}

}  // namespace ferry::sqlite
