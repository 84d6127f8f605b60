#include "store/copy.h"

#include <array>
#include <filesystem>

#include "store/postgres/migrations.h"
#include "store/postgres/pg.h"
#include "store/schema.h"
#include "store/sqlite/db.h"
#include "store/sqlite/migrations.h"
#include "store/store.h"
#include "store/store_url.h"

namespace ferry {
namespace {

// Parent tables before the ones that reference them. The column lists are the tables'
// own, so a migration that adds a column adds it here too.
struct CopyTable {
  const char* name;
  const char* cols;
  const char* order;               // SQLite's order: ids and insertion order survive the copy
  const char* pg_cols = nullptr;   // read from PostgreSQL as (BOOLEAN as 0/1), else `cols`
  const char* pg_order = nullptr;  // PostgreSQL's order, else `order`
};
constexpr std::array<CopyTable, 12> kCopyTables = {{
    {"releases", schema::kReleaseCols, "rowid", nullptr, "created_at_ms, app, version"},
    {"deployments", schema::kDeploymentCols, "rowid", nullptr, "created_at_ms, id"},
    {"deployment_events", schema::kEventCols, "seq"},
    {"env_releases", "app, env, release, deployment_id, at_ms", "rowid", nullptr, "at_ms"},
    {"release_successes", "app, release, env, at_ms", "rowid", nullptr, "at_ms"},
    {"tokens", schema::kTokenCols, "rowid",
     "id, name, hash, role, envs, created_by, created_at_ms, expires_at_ms, revoked::int",
     "created_at_ms, id"},
    {"audit", schema::kAuditCols, "seq"},
    {"approvals", "app, env, release, approver, comment, at_ms", "rowid", nullptr, "at_ms"},
    {"secrets", "app, env, name, ciphertext, updated_at_ms, updated_by", "rowid", nullptr,
     "app, env, name"},
    {"agent_desired", "agent, app, env, generation, spec, deployment_id, updated_at_ms", "rowid",
     nullptr, "agent, app, env"},
    {"slo_buckets", "app, env, width_ms, start_ms, requests, errors, latency", "rowid", nullptr,
     "app, env, width_ms, start_ms"},
    {"slo_cursors", "agent, app, env, release, counters, seen_at_ms", "rowid", nullptr,
     "agent, app, env, release"},
}};

int column_count(const char* cols) {
  int n = 1;
  for (const char* p = cols; *p; ++p) n += *p == ',' ? 1 : 0;
  return n;
}

Result<int64_t> sqlite_count(sqlite::Database& db, const char* table) {
  sqlite::Statement q(db, std::string("SELECT count(*) FROM ") + table);
  const int64_t n = q.step() ? q.integer(0) : 0;
  FERRY_RETURN_IF_ERROR(q.status());
  return n;
}

Result<int64_t> pg_count(pg::Connection& c, const char* table) {
  auto r = c.query(std::string("SELECT count(*) FROM ") + table);
  if (!r.ok()) return r.status();
  return r->integer(0, 0);
}

Result<int> sqlite_version(sqlite::Database& db) {
  sqlite::Statement q(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  const int v = q.step() ? static_cast<int>(q.integer(0)) : 0;
  FERRY_RETURN_IF_ERROR(q.status());
  return v;
}

std::string placeholders(int cols, bool pg) {
  std::string out;
  for (int i = 0; i < cols; ++i) out += (i ? "," : "") + (pg ? "$" + std::to_string(i + 1) : "?");
  return out;
}

Status copy_table(sqlite::Database& src, pg::Connection& dst, const CopyTable& t, int64_t* n) {
  const int cols = column_count(t.cols);
  const std::string insert = std::string("INSERT INTO ") + t.name + " (" + t.cols + ") VALUES (" +
                             placeholders(cols, true) + ")";
  sqlite::Statement q(src,
                      std::string("SELECT ") + t.cols + " FROM " + t.name + " ORDER BY " + t.order);
  std::vector<pg::Param> row(static_cast<size_t>(cols));
  while (q.step()) {
    for (int i = 0; i < cols; ++i) row[static_cast<size_t>(i)] = q.text(i);
    Status s = dst.exec(insert, row);
    if (!s.ok())
      return s.with_context(std::string("copying ") + t.name + " row " + std::to_string(*n + 1));
    ++*n;
  }
  return q.status();
}

// PostgreSQL → SQLite: the rows are read through a cursor (a bounded batch in memory at
// a time) inside the caller's snapshot transaction.
Status copy_table(pg::Connection& src, sqlite::Database& dst, const CopyTable& t, int64_t* n) {
  constexpr int kBatch = 1000;
  const int cols = column_count(t.cols);
  const std::string insert = std::string("INSERT INTO ") + t.name + " (" + t.cols + ") VALUES (" +
                             placeholders(cols, false) + ")";
  FERRY_RETURN_IF_ERROR(src.exec(std::string("DECLARE ferry_copy NO SCROLL CURSOR FOR SELECT ") +
                                 (t.pg_cols ? t.pg_cols : t.cols) + " FROM " + t.name +
                                 " ORDER BY " + (t.pg_order ? t.pg_order : t.order)));
  for (;;) {
    auto rows = src.query("FETCH " + std::to_string(kBatch) + " FROM ferry_copy");
    if (!rows.ok()) return rows.status().with_context(std::string("reading ") + t.name);
    for (int r = 0; r < rows->size(); ++r) {
      sqlite::Statement ins(dst, insert);
      for (int i = 0; i < cols; ++i) ins.bind(i + 1, rows->text(r, i));
      if (Status s = ins.exec(); !s.ok())
        return s.with_context(std::string("copying ") + t.name + " row " + std::to_string(*n + 1));
      ++*n;
    }
    if (rows->size() < kBatch) break;
  }
  return src.exec("CLOSE ferry_copy");
}

// The destination's audit log must be the source's, entry for entry, and chained. With
// `prefix`, `dst` may hold more entries after the source's last (a live store that went on).
Status verify_audit(Store& src, Store& dst, StoreCopyReport& report, bool prefix = false) {
  std::string prev(64, '0');
  int64_t after = 0;
  for (;;) {
    auto a = src.list_audit(after, 500);
    if (!a.ok()) return a.status();
    auto b = dst.list_audit(after, 500);
    if (!b.ok()) return b.status();
    if (prefix ? a->size() > b->size() : a->size() != b->size())
      return internal_error("audit after entry " + std::to_string(after) + ": " +
                            std::to_string(a->size()) + " entries in the source, " +
                            std::to_string(b->size()) + " at the destination");
    if (a->empty()) return Status::Ok();
    for (size_t i = 0; i < a->size(); ++i) {
      const auto &x = (*a)[i], &y = (*b)[i];
      if (x.seq != y.seq || x.hash != y.hash || x.prev_hash != y.prev_hash ||
          x.time_ms != y.time_ms || x.actor != y.actor || x.action != y.action || x.app != y.app ||
          x.env != y.env || x.release != y.release || x.git_sha != y.git_sha ||
          x.source_addr != y.source_addr || x.details != y.details)
        return internal_error("audit entry " + std::to_string(x.seq) +
                              " differs at the destination");
      if (y.prev_hash != prev)
        return internal_error("audit chain broken at entry " + std::to_string(y.seq) +
                              ": its prev_hash is not the previous entry's hash");
      prev = y.hash;
      report.audit_entries++;
      report.audit_head_seq = y.seq;
      report.audit_head_hash = y.hash;
    }
    after = a->back().seq;
  }
}

Result<StoreCopyReport> copy_sqlite_to_postgres(const std::string& from, const std::string& to) {
  const std::string path = sqlite_file_of(from);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return not_found("store file " + path + " does not exist");

  // Opening migrates both ends to this ferry's schema (the source only if it is older).
  auto src_store = open_store(from);
  if (!src_store.ok()) return src_store.status().with_context("opening the source");
  auto dst_store = open_store(to);
  if (!dst_store.ok()) return dst_store.status().with_context("opening the destination");

  auto src = sqlite::Database::open(path);
  if (!src.ok()) return src.status();
  auto dst = pg::Connection::connect(to, 10);
  if (!dst.ok()) return dst.status();
  auto sv = sqlite_version(**src);
  if (!sv.ok()) return sv.status();
  auto dv = (*dst)->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!dv.ok()) return dv.status();
  if (*sv != dv->integer(0, 0))
    return failed_precondition("schema versions differ: source " + std::to_string(*sv) +
                               ", destination " + std::to_string(dv->integer(0, 0)));
  for (const auto& t : kCopyTables) {
    auto n = pg_count(**dst, t.name);
    if (!n.ok()) return n.status();
    if (*n != 0)
      return failed_precondition("the destination already holds data (" + std::to_string(*n) +
                                 " rows in " + t.name +
                                 "); copy into a new, empty database: nothing is merged");
  }

  StoreCopyReport report;
  std::map<std::string, int64_t> source_counts;
  {
    // One read transaction on the source: every table from the same snapshot.
    FERRY_RETURN_IF_ERROR((*src)->exec("BEGIN"));
    pg::Transaction tx(**dst);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    for (const auto& t : kCopyTables) {
      auto n = sqlite_count(**src, t.name);
      if (!n.ok()) return n.status();
      source_counts[t.name] = *n;
      int64_t copied = 0;
      FERRY_RETURN_IF_ERROR(copy_table(**src, **dst, t, &copied));
      report.rows[t.name] = copied;
    }
    // Event seqs were copied as they are: the next one continues after the last.
    FERRY_RETURN_IF_ERROR(
        (*dst)->exec("SELECT setval(pg_get_serial_sequence('deployment_events', 'seq'), "
                     "GREATEST((SELECT COALESCE(MAX(seq), 0) FROM deployment_events), 1), "
                     "(SELECT COUNT(*) > 0 FROM deployment_events))"));
    FERRY_RETURN_IF_ERROR(tx.commit());
    (void)(*src)->exec("COMMIT");
  }

  // Verification reads the destination afresh, through a new connection.
  auto check = pg::Connection::connect(to, 10);
  if (!check.ok()) return check.status();
  for (const auto& t : kCopyTables) {
    auto n = pg_count(**check, t.name);
    if (!n.ok()) return n.status();
    if (*n != source_counts[t.name] || *n != report.rows[t.name])
      return internal_error(std::string("verification: ") + t.name + " has " + std::to_string(*n) +
                            " rows at the destination, " + std::to_string(source_counts[t.name]) +
                            " in the source");
  }
  FERRY_RETURN_IF_ERROR(verify_audit(**src_store, **dst_store, report));
  return report;
}

// PostgreSQL → a new SQLite file: a backup of a PostgreSQL store in the form `ferry backup`
// verifies, drills and restores. One REPEATABLE READ transaction on the source: every table
// from the same snapshot while servers keep writing.
Result<StoreCopyReport> copy_postgres_into(const std::string& from, const std::string& to,
                                           const std::string& path) {
  auto src_store = open_store(from);  // migrates the source to this ferry's schema
  if (!src_store.ok()) return src_store.status().with_context("opening the source");
  auto dst_store = open_store(to);  // creates the file with the same schema
  if (!dst_store.ok()) return dst_store.status().with_context("creating the destination");
  auto src = pg::Connection::connect(from, 10);
  if (!src.ok()) return src.status();
  auto dst = sqlite::Database::open(path);
  if (!dst.ok()) return dst.status();
  auto sv = (*src)->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!sv.ok()) return sv.status();
  auto dv = sqlite_version(**dst);
  if (!dv.ok()) return dv.status();
  if (sv->integer(0, 0) != *dv)
    return failed_precondition("schema versions differ: source " +
                               std::to_string(sv->integer(0, 0)) + ", destination " +
                               std::to_string(*dv));
  StoreCopyReport report;
  std::map<std::string, int64_t> source_counts;
  {
    FERRY_RETURN_IF_ERROR((*src)->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    FERRY_RETURN_IF_ERROR((*dst)->exec("BEGIN"));
    for (const auto& t : kCopyTables) {
      auto n = pg_count(**src, t.name);
      if (!n.ok()) return n.status();
      source_counts[t.name] = *n;
      int64_t copied = 0;
      FERRY_RETURN_IF_ERROR(copy_table(**src, **dst, t, &copied));
      report.rows[t.name] = copied;
    }
    FERRY_RETURN_IF_ERROR((*dst)->exec("COMMIT"));
    (void)(*src)->exec("COMMIT");
  }
  for (const auto& t : kCopyTables) {
    auto n = sqlite_count(**dst, t.name);
    if (!n.ok()) return n.status();
    if (*n != source_counts[t.name] || *n != report.rows[t.name])
      return internal_error(std::string("verification: ") + t.name + " has " + std::to_string(*n) +
                            " rows at the destination, " + std::to_string(source_counts[t.name]) +
                            " in the source");
  }
  // The source's audit log may have grown since the snapshot: the copy is checked up to
  // its own head, entry for entry against the source.
  FERRY_RETURN_IF_ERROR(verify_audit(**dst_store, **src_store, report, /*prefix=*/true));
  return report;
}

Result<StoreCopyReport> copy_postgres_to_sqlite(const std::string& from, const std::string& to) {
  const std::string path = sqlite_file_of(to);
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    return failed_precondition("copy to: " + path +
                               " already exists; copy into a new file: nothing is merged");
  auto r = copy_postgres_into(from, to, path);
  if (!r.ok())  // a half-made copy is never left to be taken for a whole one
    for (const char* side : {"", "-wal", "-shm", "-journal"})
      std::filesystem::remove(path + side, ec);
  return r;
}

}  // namespace

Result<StoreCopyReport> copy_store(const std::string& from, const std::string& to) {
  const bool from_pg = from.starts_with("postgres://") || from.starts_with("postgresql://");
  const bool to_pg = to.starts_with("postgres://") || to.starts_with("postgresql://");
  if (!from.starts_with("sqlite:") && !from_pg)
    return invalid_argument("copy from: '" + from.substr(0, from.find(':')) +
                            "' is not a store URL; use sqlite:PATH or postgres://…");
  if (!to.starts_with("sqlite:") && !to_pg)
    return invalid_argument("copy to: use postgres://USER@HOST/DATABASE or sqlite:PATH");
  if (from_pg == to_pg)
    return invalid_argument(
        "copy goes from SQLite to PostgreSQL or from PostgreSQL to a new SQLite file");
  FERRY_RETURN_IF_ERROR(validate_store_url(from));
  FERRY_RETURN_IF_ERROR(validate_store_url(to));
  return from_pg ? copy_postgres_to_sqlite(from, to) : copy_sqlite_to_postgres(from, to);
}

}  // namespace ferry
