#include "store/postgres/pg_store.h"

#include <algorithm>

#include "store/postgres/migrations.h"
#include "store/schema.h"
#include "store/slo_rows.h"

namespace ferry {

using pg::p;
using schema::kAuditCols;
using schema::kDeploymentCols;
using schema::kEventCols;
using schema::kReleaseCols;
using schema::kTokenCols;

namespace {

constexpr int kConnectTimeoutS = 3;
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
// A server stopped in the middle of a transaction (SIGSTOP, a long GC-like stall) would
// hold its locks, the lease row's among them, until it runs again: PostgreSQL ends such a
// session after 2 s, so a takeover waits at most that long for it. Every transaction of
// the store is a few statements with no waiting between them.
constexpr const char* kSessionSetup = "SET idle_in_transaction_session_timeout = 2000";

Json pg_json(const pg::Rows& r, int row, int col) {
  auto j = Json::parse(r.text(row, col), nullptr, false);
  return j.is_discarded() ? Json() : j;
}

ReleaseRecord pg_release(const pg::Rows& r, int i) {
  return ReleaseRecord{.app = r.text(i, 0),
                       .version = r.text(i, 1),
                       .git_sha = r.text(i, 2),
                       .artifact = r.text(i, 3),
                       .config = pg_json(r, i, 4),
                       .scan_status = r.text(i, 5),
                       .scan_summary = pg_json(r, i, 6),
                       .created_by = r.text(i, 7),
                       .created_at_ms = r.integer(i, 8)};
}

Result<DeploymentRecord> pg_deployment(const pg::Rows& r, int i) {
  DeploymentRecord d;
  d.id = r.text(i, 0);
  d.app = r.text(i, 1);
  d.env = r.text(i, 2);
  d.release = r.text(i, 3);
  d.previous_release = r.text(i, 4);
  const std::string state = r.text(i, 5);
  auto parsed = parse_deployment_state(state);
  if (!parsed)
    return internal_error("deployment " + d.id + " has unknown state '" + state +
                          "' in the store (written by a newer ferry?)");
  d.state = *parsed;
  d.strategy = r.text(i, 6);
  d.plan = pg_json(r, i, 7);
  d.current_step = static_cast<int>(r.integer(i, 8));
  d.step_state = r.text(i, 9);
  d.reason = r.text(i, 10);
  d.requested_by = r.text(i, 11);
  d.generation = r.integer(i, 12);
  d.created_at_ms = r.integer(i, 13);
  d.updated_at_ms = r.integer(i, 14);
  d.finished_at_ms = r.integer(i, 15);
  d.version = r.integer(i, 16);
  return d;
}

Result<DeploymentEvent> pg_event(const pg::Rows& r, int i) {
  DeploymentEvent e;
  e.seq = r.integer(i, 0);
  e.deployment_id = r.text(i, 1);
  e.time_ms = r.integer(i, 2);
  const std::string type = r.text(i, 3);
  auto parsed = parse_event_type(type);
  if (!parsed)
    return internal_error("event " + std::to_string(e.seq) + " has unknown type '" + type +
                          "' in the store (written by a newer ferry?)");
  e.type = *parsed;
  e.step = static_cast<int>(r.integer(i, 4));
  e.message = r.text(i, 5);
  e.data = pg_json(r, i, 6);
  return e;
}

TokenRecord pg_token(const pg::Rows& r, int i) {
  TokenRecord t;
  t.id = r.text(i, 0);
  t.name = r.text(i, 1);
  t.hash = r.text(i, 2);
  t.role = r.text(i, 3);
  auto envs = pg_json(r, i, 4);
  if (envs.is_array()) t.envs = envs.get<std::vector<std::string>>();
  t.created_by = r.text(i, 5);
  t.created_at_ms = r.integer(i, 6);
  t.expires_at_ms = r.integer(i, 7);
  t.revoked = r.boolean(i, 8);
  return t;
}

AuditRecord pg_audit(const pg::Rows& r, int i) {
  return AuditRecord{.seq = r.integer(i, 0),
                     .time_ms = r.integer(i, 1),
                     .actor = r.text(i, 2),
                     .action = r.text(i, 3),
                     .app = r.text(i, 4),
                     .env = r.text(i, 5),
                     .release = r.text(i, 6),
                     .git_sha = r.text(i, 7),
                     .source_addr = r.text(i, 8),
                     .details = pg_json(r, i, 9),
                     .prev_hash = r.text(i, 10),
                     .hash = r.text(i, 11)};
}

// Events get their seq while the event lock is held until commit, so seq order is commit
// order across every server: a reader following list_events(after_seq) never skips one.
Status pg_insert_event(pg::Connection& c, const DeploymentEvent& e, int64_t* seq) {
  FERRY_RETURN_IF_ERROR(c.exec("SELECT pg_advisory_xact_lock($1)", {p(postgres::kEventLock)}));
  auto r = c.query(
      "INSERT INTO deployment_events (deployment_id, time_ms, type, step, message, data) "
      "VALUES ($1,$2,$3,$4,$5,$6) RETURNING seq",
      {p(e.deployment_id), p(e.time_ms), p(to_string(e.type)), p(e.step), p(e.message),
       p(dump_json(e.data))});
  if (!r.ok()) return r.status();
  if (seq) *seq = r->integer(0, 0);
  return Status::Ok();
}

}  // namespace

template <typename F>
auto PgStore::run(F&& body) -> decltype(body(std::declval<pg::Connection&>())) {
  MutexLock lock(mu_);
  Status why;
  pg::Connection* c = connection(&why);
  if (!c) return why;
  auto out = body(*c);
  if constexpr (std::is_same_v<decltype(out), Status>)
    after(out);
  else
    after(out.status());
  return out;
}

template <typename F>
auto PgStore::write(F&& body) -> decltype(body(std::declval<pg::Connection&>())) {
  return run([&](pg::Connection& c) -> decltype(body(c)) {
    pg::Transaction tx(c);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(check_fence(c));
    auto out = body(c);
    if constexpr (std::is_same_v<decltype(out), Status>) {
      if (!out.ok()) return out;
    } else {
      if (!out.ok()) return out.status();
    }
    FERRY_RETURN_IF_ERROR(tx.commit());
    return out;
  });
}

Status PgStore::check_fence(pg::Connection& c) {
  const int64_t want = fence_.load();
  if (want == 0) return Status::Ok();
  auto r = c.query("SELECT token FROM leader_lease WHERE id = 1 FOR SHARE");
  if (!r.ok()) return r.status();
  const int64_t have = r->empty() ? 0 : r->integer(0, 0);
  if (have == want) return Status::Ok();
  {
    MutexLock lock(fence_mu_);
    if (on_fenced_) on_fenced_();
  }
  return unavailable("this server is no longer the leader (its fencing token " +
                     std::to_string(want) + " was superseded by " + std::to_string(have) +
                     "); nothing was written and it steps down to standby");
}

void PgStore::set_fencing_token(int64_t token, std::function<void()> on_fenced) {
  MutexLock lock(fence_mu_);
  fence_.store(token);
  on_fenced_ = std::move(on_fenced);
}

std::string PgStore::pg_restore_steps() {
  return "on PostgreSQL: when the database is down or unreachable, bring it back (ferry "
         "reconnects by itself, nothing to restore); when it is damaged, stop every `ferry "
         "server` that uses it, restore it from your PostgreSQL backups (pg_restore of a "
         "pg_dump, or point-in-time recovery), run `ferry store check` against it and start "
         "the servers again (docs/runbook.md, \"The store is corrupted\")";
}

namespace {

Result<LeaderLease> pg_lease(const pg::Rows& r) {
  if (r.empty()) return internal_error("the leader_lease row is missing from the store");
  return LeaderLease{.holder = r.text(0, 0),
                     .address = r.text(0, 1),
                     .token = r.integer(0, 2),
                     .remaining_ms = r.integer(0, 3)};
}

constexpr const char* kLeaseCols =
    "holder, address, token, "
    "(extract(epoch FROM (expires_at - clock_timestamp())) * 1000)::bigint";

}  // namespace

Result<LeaderLease> PgStore::try_lead(const std::string& holder, const std::string& address,
                                      int64_t ttl_ms, int64_t token) {
  if (holder.empty()) return invalid_argument("a leader needs a holder id");
  if (ttl_ms <= 0) return invalid_argument("lease ttl_ms must be positive");
  return run([&](pg::Connection& c) -> Result<LeaderLease> {
    // One statement, so taking and renewing are atomic. The holder renewing with its
    // token keeps it; any other win (a lapsed lease taken, or the holder coming back
    // without its token after it stepped down) adds one, so every term has its own token.
    auto r = c.query(
        std::string("UPDATE leader_lease SET token = CASE WHEN holder = $1 AND token = "
                    "$4::bigint THEN token ELSE token + 1 END, holder = $1, address = $2, "
                    "expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond' "
                    "WHERE id = 1 AND (holder = $1 OR expires_at <= clock_timestamp()) "
                    "RETURNING ") +
            kLeaseCols,
        {p(holder), p(address), p(ttl_ms), p(token)});
    if (!r.ok()) return r.status();
    if (!r->empty()) return pg_lease(*r);
    auto now = c.query(std::string("SELECT ") + kLeaseCols + " FROM leader_lease WHERE id = 1");
    if (!now.ok()) return now.status();
    return pg_lease(*now);
  });
}

Result<LeaderLease> PgStore::leader_lease() {
  return run([&](pg::Connection& c) -> Result<LeaderLease> {
    auto r = c.query(std::string("SELECT ") + kLeaseCols + " FROM leader_lease WHERE id = 1");
    if (!r.ok()) return r.status();
    return pg_lease(*r);
  });
}

Status PgStore::resign(const std::string& holder, int64_t token) {
  return run([&](pg::Connection& c) {
    return c.exec(
        "UPDATE leader_lease SET expires_at = to_timestamp(0) WHERE id = 1 AND holder = $1 AND "
        "token = $2",
        {p(holder), p(token)});
  });
}

pg::Connection* PgStore::connection(Status* why) {
  if (conn_ && conn_->healthy()) return conn_.get();
  conn_.reset();
  const auto now = Clock::now();
  if (now < next_attempt_) {
    *why = last_outage_;
    return nullptr;
  }
  auto c = pg::Connection::connect(url_, kConnectTimeoutS);
  if (!c.ok()) {
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(kFirstBackoff), kMaxBackoff);
    next_attempt_ = Clock::now() + backoff_;
    last_outage_ = unavailable("the PostgreSQL store is unreachable (" + c.status().message() +
                               "); ferry retries every few seconds, nothing was written");
    *why = last_outage_;
    return nullptr;
  }
  backoff_ = std::chrono::milliseconds(0);
  conn_ = std::move(*c);
  (void)conn_->exec(kSessionSetup);
  return conn_.get();
}

void PgStore::after(const Status& s) {
  if (s.code() != Code::kUnavailable || (conn_ && conn_->healthy())) return;
  // The server went away during the statement: start over on the next call, after the
  // first backoff step.
  conn_.reset();
  backoff_ = kFirstBackoff;
  next_attempt_ = Clock::now() + backoff_;
  last_outage_ = unavailable("the PostgreSQL store connection was lost (" + s.message() +
                             "); ferry reconnects by itself");
}

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& url) {
  auto c = pg::Connection::connect(url, kConnectTimeoutS);
  if (!c.ok()) return c.status();
  auto v = postgres::migrate(**c);
  if (!v.ok()) return v.status().with_context("migrating the PostgreSQL store");
  FERRY_RETURN_IF_ERROR((*c)->exec(kSessionSetup));
  return std::unique_ptr<PgStore>(new PgStore(url, std::move(*c)));
}

Result<std::vector<std::string>> PgStore::check_url(const std::string& url) {
  auto c = pg::Connection::connect(url, kConnectTimeoutS);
  if (!c.ok()) return c.status();
  std::vector<std::string> problems;
  auto v = (*c)->query(
      "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE "
      "to_regclass('schema_migrations') "
      "IS NOT NULL");
  if (!v.ok()) return not_found("no ferry store in this database (" + v.status().message() + ")");
  const int have = static_cast<int>(v->integer(0, 0));
  const int want = postgres::migrations().back().version;
  if (have > want)
    problems.push_back("schema version " + std::to_string(have) +
                       " is newer than this ferry knows (" + std::to_string(want) + ")");
  auto orphans = (*c)->query(
      "SELECT count(*) FROM deployment_events e LEFT JOIN deployments d ON d.id = "
      "e.deployment_id WHERE d.id IS NULL");
  if (orphans.ok() && orphans->integer(0, 0) > 0)
    problems.push_back(std::to_string(orphans->integer(0, 0)) +
                       " deployment events belong to no deployment");
  return problems;
}

Result<int> PgStore::schema_version() {
  return run([](pg::Connection& c) -> Result<int> {
    auto r = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!r.ok()) return r.status();
    return static_cast<int>(r->integer(0, 0));
  });
}

Status PgStore::health() {
  return run([](pg::Connection& c) { return c.exec("SELECT 1"); });
}

Result<std::vector<std::string>> PgStore::check() {
  return check_url(url_);
}

Status PgStore::create_release(const ReleaseRecord& r) {
  return write([&](pg::Connection& c) {
    Status s = c.exec(
        std::string("INSERT INTO releases (") + kReleaseCols +
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        {p(r.app), p(r.version), p(r.git_sha), p(r.artifact), p(dump_json(r.config)),
         p(r.scan_status), p(dump_json(r.scan_summary)), p(r.created_by), p(r.created_at_ms)});
    if (s.code() == Code::kAlreadyExists)
      return already_exists("release " + r.app + "@" + r.version +
                            " already exists; releases are immutable, use a new version");
    return s;
  });
}

Result<ReleaseRecord> PgStore::get_release(const std::string& app, const std::string& version) {
  return run([&](pg::Connection& c) -> Result<ReleaseRecord> {
    auto r = c.query(
        std::string("SELECT ") + kReleaseCols + " FROM releases WHERE app = $1 AND version = $2",
        {p(app), p(version)});
    if (!r.ok()) return r.status();
    if (r->empty())
      return not_found("release " + app + "@" + version + " does not exist (see `ferry releases " +
                       app + "`)");
    return pg_release(*r, 0);
  });
}

Result<std::vector<ReleaseRecord>> PgStore::list_releases(const std::string& app, int limit) {
  return run([&](pg::Connection& c) -> Result<std::vector<ReleaseRecord>> {
    auto r = c.query(std::string("SELECT ") + kReleaseCols +
                         " FROM releases WHERE app = $1 ORDER BY created_at_ms DESC, row_order "
                         "DESC LIMIT $2",
                     {p(app), p(limit)});
    if (!r.ok()) return r.status();
    std::vector<ReleaseRecord> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(pg_release(*r, i));
    return out;
  });
}

Status PgStore::update_release_scan(const std::string& app, const std::string& version,
                                    const std::string& scan_status, const Json& summary) {
  return write([&](pg::Connection& c) -> Status {
    auto r = c.query(
        "UPDATE releases SET scan_status = $1, scan_summary = $2 WHERE app = $3 AND version = $4",
        {p(scan_status), p(dump_json(summary)), p(app), p(version)});
    if (!r.ok()) return r.status();
    if (r->affected() == 0) return not_found("release " + app + "@" + version + " does not exist");
    return Status::Ok();
  });
}

Status PgStore::create_deployment(const DeploymentRecord& d, const DeploymentEvent& created) {
  return run([&](pg::Connection& c) -> Status {
    pg::Transaction tx(c);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(check_fence(c));
    Status s =
        c.exec(std::string("INSERT INTO deployments (") + kDeploymentCols +
                   ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,1)",
               {p(d.id), p(d.app), p(d.env), p(d.release), p(d.previous_release),
                p(to_string(d.state)), p(d.strategy), p(dump_json(d.plan)), p(d.current_step),
                p(d.step_state), p(d.reason), p(d.requested_by), p(d.generation),
                p(d.created_at_ms), p(d.updated_at_ms), p(d.finished_at_ms)});
    if (!s.ok()) {
      // Which rule the row broke comes from the constraint's name, not the message.
      const auto& err = c.last_error();
      if (s.code() == Code::kAlreadyExists && err.constraint == schema::kOneActiveIndex)
        return schema::active_deployment_exists(d.app, d.env);
      if (s.code() == Code::kAlreadyExists) return already_exists("deployment " + d.id + " exists");
      if (err.sqlstate == "23503")
        return not_found("release " + d.app + "@" + d.release + " does not exist (see `ferry " +
                         "releases " + d.app + "`)");
      return s;
    }
    DeploymentEvent e = created;
    e.deployment_id = d.id;
    FERRY_RETURN_IF_ERROR(pg_insert_event(c, e, nullptr));
    return tx.commit();
  });
}

Status PgStore::update_deployment(DeploymentRecord& d, const std::vector<DeploymentEvent>& events) {
  return run([&](pg::Connection& c) -> Status {
    pg::Transaction tx(c);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(check_fence(c));
    auto r = c.query(
        "UPDATE deployments SET state=$1, plan=$2, current_step=$3, step_state=$4, reason=$5, "
        "generation=$6, updated_at_ms=$7, finished_at_ms=$8, previous_release=$9, "
        "version=version+1 WHERE id=$10 AND version=$11",
        {p(to_string(d.state)), p(dump_json(d.plan)), p(d.current_step), p(d.step_state),
         p(d.reason), p(d.generation), p(d.updated_at_ms), p(d.finished_at_ms),
         p(d.previous_release), p(d.id), p(d.version)});
    if (!r.ok()) {
      if (r.status().code() == Code::kAlreadyExists &&
          c.last_error().constraint == schema::kOneActiveIndex)
        return schema::active_deployment_exists(d.app, d.env);
      return r.status();
    }
    if (r->affected() == 0)
      return conflict("deployment " + d.id + " changed since it was read (version " +
                      std::to_string(d.version) + "); read it again");
    for (const auto& e : events) {
      DeploymentEvent ev = e;
      ev.deployment_id = d.id;
      FERRY_RETURN_IF_ERROR(pg_insert_event(c, ev, nullptr));
    }
    FERRY_RETURN_IF_ERROR(tx.commit());
    ++d.version;
    return Status::Ok();
  });
}

Result<DeploymentRecord> PgStore::get_deployment(const std::string& id) {
  return run([&](pg::Connection& c) -> Result<DeploymentRecord> {
    auto r = c.query(std::string("SELECT ") + kDeploymentCols + " FROM deployments WHERE id = $1",
                     {p(id)});
    if (!r.ok()) return r.status();
    if (r->empty()) return not_found("deployment " + id + " does not exist");
    return pg_deployment(*r, 0);
  });
}

Result<std::vector<DeploymentRecord>> PgStore::list_deployments(const DeploymentFilter& f) {
  return run([&](pg::Connection& c) -> Result<std::vector<DeploymentRecord>> {
    std::string sql = std::string("SELECT ") + kDeploymentCols +
                      " FROM deployments WHERE ($1 = '' OR app = $1) AND ($2 = '' OR env = $2)";
    if (f.active_only) sql += " AND state NOT IN (" + schema::final_states_sql() + ")";
    sql += " ORDER BY created_at_ms DESC, row_order DESC LIMIT $3";
    auto r = c.query(sql, {p(f.app), p(f.env), p(f.limit)});
    if (!r.ok()) return r.status();
    std::vector<DeploymentRecord> out;
    for (int i = 0; i < r->size(); ++i) {
      auto d = pg_deployment(*r, i);
      if (!d.ok()) return d.status();
      out.push_back(std::move(*d));
    }
    return out;
  });
}

Result<int64_t> PgStore::append_event(const DeploymentEvent& e) {
  return run([&](pg::Connection& c) -> Result<int64_t> {
    pg::Transaction tx(c);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(check_fence(c));
    int64_t seq = 0;
    Status s = pg_insert_event(c, e, &seq);
    if (!s.ok()) {
      if (c.last_error().sqlstate == "23503")
        return not_found("deployment " + e.deployment_id + " does not exist");
      return s;
    }
    FERRY_RETURN_IF_ERROR(tx.commit());
    return seq;
  });
}

Result<std::vector<DeploymentEvent>> PgStore::list_events(const std::string& deployment_id,
                                                          int64_t after_seq, int limit) {
  return run([&](pg::Connection& c) -> Result<std::vector<DeploymentEvent>> {
    auto r = c.query(std::string("SELECT ") + kEventCols +
                         " FROM deployment_events WHERE ($1 = '' OR deployment_id = $1) AND seq "
                         "> $2 ORDER BY seq LIMIT $3",
                     {p(deployment_id), p(after_seq), p(limit)});
    if (!r.ok()) return r.status();
    std::vector<DeploymentEvent> out;
    for (int i = 0; i < r->size(); ++i) {
      auto e = pg_event(*r, i);
      if (!e.ok()) return e.status();
      out.push_back(std::move(*e));
    }
    return out;
  });
}

Status PgStore::set_env_release(const EnvReleaseRecord& r) {
  return run([&](pg::Connection& c) -> Status {
    pg::Transaction tx(c);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(check_fence(c));
    FERRY_RETURN_IF_ERROR(
        c.exec("INSERT INTO env_releases (app, env, release, deployment_id, at_ms) VALUES "
               "($1,$2,$3,$4,$5) ON CONFLICT (app, env) DO UPDATE SET release = EXCLUDED.release, "
               "deployment_id = EXCLUDED.deployment_id, at_ms = EXCLUDED.at_ms",
               {p(r.app), p(r.env), p(r.release), p(r.deployment_id), p(r.at_ms)}));
    FERRY_RETURN_IF_ERROR(
        c.exec("INSERT INTO release_successes (app, release, env, at_ms) VALUES ($1,$2,$3,$4) "
               "ON CONFLICT DO NOTHING",
               {p(r.app), p(r.release), p(r.env), p(r.at_ms)}));
    return tx.commit();
  });
}

Result<std::vector<EnvReleaseRecord>> PgStore::list_env_releases(const std::string& app) {
  return run([&](pg::Connection& c) -> Result<std::vector<EnvReleaseRecord>> {
    auto r = c.query(
        "SELECT app, env, release, deployment_id, at_ms FROM env_releases WHERE ($1 = '' OR "
        "app = $1) ORDER BY app, env",
        {p(app)});
    if (!r.ok()) return r.status();
    std::vector<EnvReleaseRecord> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back({r->text(i, 0), r->text(i, 1), r->text(i, 2), r->text(i, 3), r->integer(i, 4)});
    return out;
  });
}

Result<bool> PgStore::release_succeeded_in(const std::string& app, const std::string& release,
                                           const std::string& env) {
  return run([&](pg::Connection& c) -> Result<bool> {
    auto r = c.query("SELECT 1 FROM release_successes WHERE app = $1 AND release = $2 AND env = $3",
                     {p(app), p(release), p(env)});
    if (!r.ok()) return r.status();
    return !r->empty();
  });
}

Status PgStore::put_agent_desired(const AgentDesiredRecord& r) {
  // A late write never undoes a newer generation (store.h).
  return write([&](pg::Connection& c) {
    return c.exec(
        "INSERT INTO agent_desired (agent, app, env, generation, spec, deployment_id, "
        "updated_at_ms) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (agent, app, env) DO UPDATE "
        "SET generation = excluded.generation, spec = excluded.spec, deployment_id = "
        "excluded.deployment_id, updated_at_ms = excluded.updated_at_ms WHERE "
        "excluded.generation >= agent_desired.generation",
        {p(r.agent), p(r.app), p(r.env), p(r.generation), p(dump_json(r.spec)), p(r.deployment_id),
         p(r.updated_at_ms)});
  });
}

Result<std::vector<AgentDesiredRecord>> PgStore::list_agent_desired() {
  return run([&](pg::Connection& c) -> Result<std::vector<AgentDesiredRecord>> {
    auto r = c.query(
        "SELECT agent, app, env, generation, spec, deployment_id, updated_at_ms FROM "
        "agent_desired ORDER BY agent, app, env",
        {});
    if (!r.ok()) return r.status();
    std::vector<AgentDesiredRecord> out;
    for (int i = 0; i < static_cast<int>(r->size()); ++i)
      out.push_back({r->text(i, 0), r->text(i, 1), r->text(i, 2), r->integer(i, 3),
                     pg_json(*r, i, 4), r->text(i, 5), r->integer(i, 6)});
    return out;
  });
}

Status PgStore::create_token(const TokenRecord& t) {
  return write([&](pg::Connection& c) {
    return c.exec(
        std::string("INSERT INTO tokens (") + kTokenCols + ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        {p(t.id), p(t.name), p(t.hash), p(t.role), p(dump_json(Json(t.envs))), p(t.created_by),
         p(t.created_at_ms), p(t.expires_at_ms), p(t.revoked)});
  });
}

Result<TokenRecord> PgStore::get_token(const std::string& id) {
  return run([&](pg::Connection& c) -> Result<TokenRecord> {
    auto r = c.query(std::string("SELECT ") + kTokenCols + " FROM tokens WHERE id = $1", {p(id)});
    if (!r.ok()) return r.status();
    if (r->empty()) return not_found("token " + id + " does not exist");
    return pg_token(*r, 0);
  });
}

Result<std::vector<TokenRecord>> PgStore::list_tokens() {
  return run([&](pg::Connection& c) -> Result<std::vector<TokenRecord>> {
    auto r = c.query(std::string("SELECT ") + kTokenCols + " FROM tokens ORDER BY created_at_ms");
    if (!r.ok()) return r.status();
    std::vector<TokenRecord> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(pg_token(*r, i));
    return out;
  });
}

Status PgStore::revoke_token(const std::string& id) {
  return write([&](pg::Connection& c) -> Status {
    auto r = c.query("UPDATE tokens SET revoked = TRUE WHERE id = $1", {p(id)});
    if (!r.ok()) return r.status();
    if (r->affected() == 0) return not_found("token " + id + " does not exist");
    return Status::Ok();
  });
}

Result<AuditRecord> PgStore::append_audit(AuditRecord a,
                                          const std::function<void(AuditRecord&)>& seal) {
  return run([&](pg::Connection& c) -> Result<AuditRecord> {
    pg::Transaction tx(c);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(check_fence(c));
    // Every server appends under this lock: the head read below is the head at commit.
    FERRY_RETURN_IF_ERROR(c.exec("SELECT pg_advisory_xact_lock($1)", {p(postgres::kAuditLock)}));
    auto last = c.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!last.ok()) return last.status();
    if (!last->empty()) {
      a.seq = last->integer(0, 0) + 1;
      a.prev_hash = last->text(0, 1);
    } else {
      a.seq = 1;
      a.prev_hash = std::string(64, '0');
    }
    seal(a);
    FERRY_RETURN_IF_ERROR(c.exec(
        std::string("INSERT INTO audit (") + kAuditCols +
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
        {p(a.seq), p(a.time_ms), p(a.actor), p(a.action), p(a.app), p(a.env), p(a.release),
         p(a.git_sha), p(a.source_addr), p(dump_json(a.details)), p(a.prev_hash), p(a.hash)}));
    FERRY_RETURN_IF_ERROR(tx.commit());
    return a;
  });
}

Result<std::vector<AuditRecord>> PgStore::list_audit(int64_t after_seq, int limit) {
  return run([&](pg::Connection& c) -> Result<std::vector<AuditRecord>> {
    auto r = c.query(
        std::string("SELECT ") + kAuditCols + " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        {p(after_seq), p(limit)});
    if (!r.ok()) return r.status();
    std::vector<AuditRecord> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(pg_audit(*r, i));
    return out;
  });
}

Result<AuditRecord> PgStore::audit_head() {
  return run([&](pg::Connection& c) -> Result<AuditRecord> {
    auto r = c.query(std::string("SELECT ") + kAuditCols + " FROM audit ORDER BY seq DESC LIMIT 1");
    if (!r.ok()) return r.status();
    if (r->empty()) return AuditRecord{};
    return pg_audit(*r, 0);
  });
}

Status PgStore::add_approval(const ApprovalRecord& a) {
  return write([&](pg::Connection& c) {
    return c.exec(
        "INSERT INTO approvals (app, env, release, approver, comment, at_ms) VALUES "
        "($1,$2,$3,$4,$5,$6) ON CONFLICT (app, env, release, approver) DO UPDATE SET comment = "
        "EXCLUDED.comment, at_ms = EXCLUDED.at_ms",
        {p(a.app), p(a.env), p(a.release), p(a.approver), p(a.comment), p(a.at_ms)});
  });
}

Result<std::vector<ApprovalRecord>> PgStore::list_approvals(const std::string& app,
                                                            const std::string& env,
                                                            const std::string& release) {
  return run([&](pg::Connection& c) -> Result<std::vector<ApprovalRecord>> {
    auto r = c.query(
        "SELECT app, env, release, approver, comment, at_ms FROM approvals WHERE app = $1 AND "
        "env = $2 AND release = $3 ORDER BY at_ms",
        {p(app), p(env), p(release)});
    if (!r.ok()) return r.status();
    std::vector<ApprovalRecord> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back({r->text(i, 0), r->text(i, 1), r->text(i, 2), r->text(i, 3), r->text(i, 4),
                     r->integer(i, 5)});
    return out;
  });
}

Status PgStore::put_secret(const SecretRecord& s) {
  return write([&](pg::Connection& c) {
    return c.exec(
        "INSERT INTO secrets (app, env, name, ciphertext, updated_at_ms, updated_by) VALUES "
        "($1,$2,$3,$4,$5,$6) ON CONFLICT (app, env, name) DO UPDATE SET ciphertext = "
        "EXCLUDED.ciphertext, updated_at_ms = EXCLUDED.updated_at_ms, updated_by = "
        "EXCLUDED.updated_by",
        {p(s.app), p(s.env), p(s.name), p(s.ciphertext), p(s.updated_at_ms), p(s.updated_by)});
  });
}

Status PgStore::delete_secret(const std::string& app, const std::string& env,
                              const std::string& name) {
  return write([&](pg::Connection& c) -> Status {
    auto r = c.query("DELETE FROM secrets WHERE app = $1 AND env = $2 AND name = $3",
                     {p(app), p(env), p(name)});
    if (!r.ok()) return r.status();
    if (r->affected() == 0)
      return not_found("secret " + name + " is not set for " + app + " in " + env);
    return Status::Ok();
  });
}

Result<std::vector<SecretRecord>> PgStore::list_secrets(const std::string& app,
                                                        const std::string& env) {
  return run([&](pg::Connection& c) -> Result<std::vector<SecretRecord>> {
    auto r = c.query(
        "SELECT app, env, name, ciphertext, updated_at_ms, updated_by FROM secrets WHERE app = "
        "$1 AND env = $2 ORDER BY name",
        {p(app), p(env)});
    if (!r.ok()) return r.status();
    std::vector<SecretRecord> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back({r->text(i, 0), r->text(i, 1), r->text(i, 2), r->text(i, 3), r->integer(i, 4),
                     r->text(i, 5)});
    return out;
  });
}

// SLO buckets and collector cursors (store.h, docs/slo.md).

Status PgStore::add_slo_bucket(pg::Connection& c, const SloBucketRecord& d) {
  SloBucketRecord row = d;
  row.requests = row.errors = 0;
  row.latency.clear();
  // The row is locked until commit: two writers of one bucket add up, never overwrite.
  auto r = c.query(
      "SELECT requests, errors, latency FROM slo_buckets WHERE app = $1 AND env = $2 AND "
      "width_ms = $3 AND start_ms = $4 FOR UPDATE",
      {p(d.app), p(d.env), p(d.width_ms), p(d.start_ms)});
  if (!r.ok()) return r.status();
  if (!r->empty()) {
    row.requests = r->integer(0, 0);
    row.errors = r->integer(0, 1);
    row.latency = slo_rows::parse_latency(r->text(0, 2));
  }
  slo_rows::add_bucket(row, d);
  return c.exec(
      "INSERT INTO slo_buckets (app, env, width_ms, start_ms, requests, errors, latency) VALUES "
      "($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (app, env, width_ms, start_ms) DO UPDATE SET requests "
      "= excluded.requests, errors = excluded.errors, latency = excluded.latency",
      {p(row.app), p(row.env), p(row.width_ms), p(row.start_ms), p(row.requests), p(row.errors),
       p(slo_rows::latency_text(row.latency))});
}

Status PgStore::add_slo_counts(const std::vector<SloBucketRecord>& deltas,
                               const std::vector<SloCursorRecord>& cursors) {
  for (const auto& d : deltas) FERRY_RETURN_IF_ERROR(slo_rows::check_delta(d));
  Status written = write([&](pg::Connection& c) -> Status {
    for (const auto& d : deltas) FERRY_RETURN_IF_ERROR(add_slo_bucket(c, d));
    for (const auto& k : cursors)
      FERRY_RETURN_IF_ERROR(c.exec(
          "INSERT INTO slo_cursors (agent, app, env, release, counters, seen_at_ms) VALUES "
          "($1,$2,$3,$4,$5,$6) ON CONFLICT (agent, app, env, release) DO UPDATE SET counters = "
          "excluded.counters, seen_at_ms = excluded.seen_at_ms",
          {p(k.agent), p(k.app), p(k.env), p(k.release), p(dump_json(k.counters)),
           p(k.seen_at_ms)}));
    return Status::Ok();
  });
  slo_rows::note_write();
  return written;
}

Result<std::vector<SloBucketRecord>> PgStore::list_slo_buckets(const std::string& app,
                                                               const std::string& env,
                                                               int64_t from_ms, int64_t to_ms) {
  return run([&](pg::Connection& c) -> Result<std::vector<SloBucketRecord>> {
    auto r = c.query(
        "SELECT app, env, start_ms, width_ms, requests, errors, latency FROM slo_buckets WHERE "
        "app = $1 AND env = $2 AND start_ms >= $3 AND start_ms < $4 ORDER BY start_ms, width_ms",
        {p(app), p(env), p(from_ms), p(to_ms)});
    if (!r.ok()) return r.status();
    std::vector<SloBucketRecord> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back({r->text(i, 0), r->text(i, 1), r->integer(i, 2), r->integer(i, 3),
                     r->integer(i, 4), r->integer(i, 5), slo_rows::parse_latency(r->text(i, 6))});
    return out;
  });
}

Result<std::vector<SloCursorRecord>> PgStore::list_slo_cursors() {
  return run([&](pg::Connection& c) -> Result<std::vector<SloCursorRecord>> {
    auto r = c.query(
        "SELECT agent, app, env, release, counters, seen_at_ms FROM slo_cursors ORDER BY agent, "
        "app, env, release",
        {});
    if (!r.ok()) return r.status();
    std::vector<SloCursorRecord> out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back({r->text(i, 0), r->text(i, 1), r->text(i, 2), r->text(i, 3), pg_json(*r, i, 4),
                     r->integer(i, 5)});
    return out;
  });
}

Status PgStore::compact_slo(int64_t hours_before_ms, int64_t drop_before_ms,
                            int64_t cursors_before_ms) {
  if (hours_before_ms % slo_rows::kHourMs != 0)
    return invalid_argument("SLO compaction must cut at a whole hour");
  Status written = write([&](pg::Connection& c) -> Status {
    auto r = c.query(
        "SELECT app, env, start_ms, width_ms, requests, errors, latency FROM slo_buckets WHERE "
        "width_ms = $1 AND start_ms < $2 FOR UPDATE",
        {p(slo_rows::kMinuteMs), p(hours_before_ms)});
    if (!r.ok()) return r.status();
    std::vector<SloBucketRecord> minutes;
    for (int i = 0; i < r->size(); ++i)
      minutes.push_back({r->text(i, 0), r->text(i, 1), r->integer(i, 2), r->integer(i, 3),
                         r->integer(i, 4), r->integer(i, 5),
                         slo_rows::parse_latency(r->text(i, 6))});
    for (const auto& h : slo_rows::fold_into_hours(minutes))
      FERRY_RETURN_IF_ERROR(add_slo_bucket(c, h));
    FERRY_RETURN_IF_ERROR(c.exec("DELETE FROM slo_buckets WHERE width_ms = $1 AND start_ms < $2",
                                 {p(slo_rows::kMinuteMs), p(hours_before_ms)}));
    FERRY_RETURN_IF_ERROR(
        c.exec("DELETE FROM slo_buckets WHERE start_ms < $1", {p(drop_before_ms)}));
    return c.exec("DELETE FROM slo_cursors WHERE seen_at_ms < $1", {p(cursors_before_ms)});
  });
  slo_rows::note_write();
  return written;
}

}  // namespace ferry
