// SqliteStore's SLO buckets and collector cursors (store.h, docs/slo.md).
#include "store/slo_rows.h"
#include "store/sqlite/sqlite_store.h"

namespace ferry {

using sqlite::Statement;
using sqlite::Transaction;

Status SqliteStore::add_slo_bucket_locked(const SloBucketRecord& d) {
  SloBucketRecord row = d;
  row.requests = row.errors = 0;
  row.latency.clear();
  {
    Statement q(*db_,
                "SELECT requests, errors, latency FROM slo_buckets WHERE app = ? AND env = ? AND "
                "width_ms = ? AND start_ms = ?");
    q.bind(1, d.app).bind(2, d.env).bind(3, d.width_ms).bind(4, d.start_ms);
    if (q.step()) {
      row.requests = q.integer(0);
      row.errors = q.integer(1);
      row.latency = slo_rows::parse_latency(q.text(2));
    }
    FERRY_RETURN_IF_ERROR(q.status());
  }
  slo_rows::add_bucket(row, d);
  Statement up(
      *db_,
      "INSERT INTO slo_buckets (app, env, width_ms, start_ms, requests, errors, latency) "
      "VALUES (?,?,?,?,?,?,?) ON CONFLICT (app, env, width_ms, start_ms) DO UPDATE SET "
      "requests = excluded.requests, errors = excluded.errors, latency = excluded.latency");
  up.bind(1, row.app)
      .bind(2, row.env)
      .bind(3, row.width_ms)
      .bind(4, row.start_ms)
      .bind(5, row.requests)
      .bind(6, row.errors)
      .bind(7, slo_rows::latency_text(row.latency));
  return up.exec();
}

Status SqliteStore::add_slo_counts(const std::vector<SloBucketRecord>& deltas,
                                   const std::vector<SloCursorRecord>& cursors) {
  for (const auto& d : deltas) FERRY_RETURN_IF_ERROR(slo_rows::check_delta(d));
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  for (const auto& d : deltas) FERRY_RETURN_IF_ERROR(add_slo_bucket_locked(d));
  for (const auto& c : cursors) {
    Statement q(*db_,
                "INSERT INTO slo_cursors (agent, app, env, release, counters, seen_at_ms) VALUES "
                "(?,?,?,?,?,?) ON CONFLICT (agent, app, env, release) DO UPDATE SET counters = "
                "excluded.counters, seen_at_ms = excluded.seen_at_ms");
    q.bind(1, c.agent)
        .bind(2, c.app)
        .bind(3, c.env)
        .bind(4, c.release)
        .bind(5, dump_json(c.counters))
        .bind(6, c.seen_at_ms);
    FERRY_RETURN_IF_ERROR(q.exec());
  }
  Status committed = tx.commit();
  slo_rows::note_write();
  return committed;
}

Result<std::vector<SloBucketRecord>> SqliteStore::list_slo_buckets(const std::string& app,
                                                                   const std::string& env,
                                                                   int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "SELECT app, env, start_ms, width_ms, requests, errors, latency FROM slo_buckets "
              "WHERE app = ? AND env = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms, "
              "width_ms");
  q.bind(1, app).bind(2, env).bind(3, from_ms).bind(4, to_ms);
  std::vector<SloBucketRecord> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1), q.integer(2), q.integer(3), q.integer(4), q.integer(5),
                   slo_rows::parse_latency(q.text(6))});
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Result<std::vector<SloCursorRecord>> SqliteStore::list_slo_cursors() {
  std::lock_guard lock(mu_);
  Statement q(*db_,
              "SELECT agent, app, env, release, counters, seen_at_ms FROM slo_cursors ORDER BY "
              "agent, app, env, release");
  std::vector<SloCursorRecord> out;
  while (q.step()) {
    auto counters = parse_json(q.text(4));
    out.push_back({q.text(0), q.text(1), q.text(2), q.text(3),
                   counters.ok() ? *counters : Json::object(), q.integer(5)});
  }
  FERRY_RETURN_IF_ERROR(q.status());
  return out;
}

Status SqliteStore::compact_slo(int64_t hours_before_ms, int64_t drop_before_ms,
                                int64_t cursors_before_ms) {
  if (hours_before_ms % slo_rows::kHourMs != 0)
    return invalid_argument("SLO compaction must cut at a whole hour");
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  std::vector<SloBucketRecord> minutes;
  {
    Statement q(*db_,
                "SELECT app, env, start_ms, width_ms, requests, errors, latency FROM slo_buckets "
                "WHERE width_ms = ? AND start_ms < ?");
    q.bind(1, slo_rows::kMinuteMs).bind(2, hours_before_ms);
    while (q.step())
      minutes.push_back({q.text(0), q.text(1), q.integer(2), q.integer(3), q.integer(4),
                         q.integer(5), slo_rows::parse_latency(q.text(6))});
    FERRY_RETURN_IF_ERROR(q.status());
  }
  for (const auto& h : slo_rows::fold_into_hours(minutes))
    FERRY_RETURN_IF_ERROR(add_slo_bucket_locked(h));
  {
    Statement del(*db_, "DELETE FROM slo_buckets WHERE width_ms = ? AND start_ms < ?");
    del.bind(1, slo_rows::kMinuteMs).bind(2, hours_before_ms);
    FERRY_RETURN_IF_ERROR(del.exec());
  }
  {
    Statement del(*db_, "DELETE FROM slo_buckets WHERE start_ms < ?");
    del.bind(1, drop_before_ms);
    FERRY_RETURN_IF_ERROR(del.exec());
  }
  {
    Statement del(*db_, "DELETE FROM slo_cursors WHERE seen_at_ms < ?");
    del.bind(1, cursors_before_ms);
    FERRY_RETURN_IF_ERROR(del.exec());
  }
  Status committed = tx.commit();
  slo_rows::note_write();
  return committed;
}

}  // namespace ferry
