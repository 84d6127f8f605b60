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
  const char* order;  // SQLite's order: ids and insertion order survive the copy
};
constexpr std::array<CopyTable, 12> kCopyTables = {{
    {"releases", schema::kReleaseCols, "rowid"},
    {"deployments", schema::kDeploymentCols, "rowid"},
    {"deployment_events", schema::kEventCols, "seq"},
    {"env_releases", "app, env, release, deployment_id, at_ms", "rowid"},
    {"release_successes", "app, release, env, at_ms", "rowid"},
    {"tokens", schema::kTokenCols, "rowid"},
    {"audit", schema::kAuditCols, "seq"},
    {"approvals", "app, env, release, approver, comment, at_ms", "rowid"},
    {"secrets", "app, env, name, ciphertext, updated_at_ms, updated_by", "rowid"},
    {"agent_desired", "agent, app, env, generation, spec, deployment_id, updated_at_ms", "rowid"},
    {"slo_buckets", "app, env, width_ms, start_ms, requests, errors, latency", "rowid"},
    {"slo_cursors", "agent, app, env, release, counters, seen_at_ms", "rowid"},
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

Status copy_table(sqlite::Database& src, pg::Connection& dst, const CopyTable& t, int64_t* n) {
  const int cols = column_count(t.cols);
  std::string insert = std::string("INSERT INTO ") + t.name + " (" + t.cols + ") VALUES (";
  for (int i = 0; i < cols; ++i) insert += (i ? ",$" : "$") + std::to_string(i + 1);
  insert += ")";
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

// The destination's audit log must be the source's, entry for entry, and chained.
Status verify_audit(Store& src, Store& dst, StoreCopyReport& report) {
  std::string prev(64, '0');
  int64_t after = 0;
  for (;;) {
    auto a = src.list_audit(after, 500);
    if (!a.ok()) return a.status();
    auto b = dst.list_audit(after, 500);
    if (!b.ok()) return b.status();
    if (a->size() != b->size())
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

}  // namespace

Result<StoreCopyReport> copy_store(const std::string& from, const std::string& to) {
  if (!from.starts_with("sqlite:"))
    return invalid_argument("copy from: '" + from.substr(0, from.find(':')) +
                            "' is not a SQLite store; use sqlite:PATH");
  if (!to.starts_with("postgres://") && !to.starts_with("postgresql://"))
    return invalid_argument("copy to: use postgres://USER@HOST/DATABASE");
  FERRY_RETURN_IF_ERROR(validate_store_url(from));
  FERRY_RETURN_IF_ERROR(validate_store_url(to));
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

}  // namespace ferry
