// Thin RAII wrappers over the SQLite C API: a connection and a prepared statement.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry::sqlite {

class Database;

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  // As above; a corruption error is also recorded on `db` (Database::health()).
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool prepared() const { return stmt_ != nullptr; }
  const Status& prepare_status() const { return prep_; }

  // Binds by 1-based index.
  Statement& bind(int i, std::string_view v);
  Statement& bind(int i, int64_t v);
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, bool v) { return bind(i, static_cast<int64_t>(v ? 1 : 0)); }
  Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }

  // True while rows come; false at the end. Errors are kept in status().
  bool step();
  // Runs a statement that returns no rows.
  Status exec();
  const Status& status() const { return status_; }

  std::string text(int col) const;
  int64_t integer(int col) const;

 private:
  sqlite3* db_;
  Database* owner_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Status prep_;
  Status status_;
};

class Database {
 public:
  static Result<std::unique_ptr<Database>> open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(std::string_view sql);
  sqlite3* handle() const { return db_; }
  int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  int changes() const { return sqlite3_changes(db_); }

  // PRAGMA quick_check (or integrity_check when `full`): the problems found, at most
  // `max_errors`, empty when the file is sound. With `max_ms` > 0 the check is
  // interrupted after that long and the result is kDeadlineExceeded.
  Result<std::vector<std::string>> check(bool full, int max_errors, int64_t max_ms);

  // Ok, or the corruption this connection has seen (from a check or any statement):
  // kDataLoss-like failure kept until the process restarts. Thread-safe.
  Status health() const;
  // Records `rc` (an SQLite result code) when it means the file is damaged.
  void note_result(int rc, std::string_view what);
  // The SQLite virtual-machine steps of every Statement finished on this connection: the
  // work its queries did (rows visited), for tests that show a query's cost stays bounded.
  int64_t vm_steps() const { return vm_steps_.load(std::memory_order_relaxed); }
  void add_vm_steps(int64_t n) { vm_steps_.fetch_add(n, std::memory_order_relaxed); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::atomic<int64_t> vm_steps_{0};
  mutable std::mutex health_mu_;
  Status health_;  // guarded by health_mu_
};

// True for SQLite result codes that mean the database file is damaged.
bool is_corruption(int rc);

// BEGIN IMMEDIATE … COMMIT, rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  const Status& begin_status() const { return begin_; }
  Status commit();

 private:
  Database& db_;
  Status begin_;
  bool done_ = false;
};

}  // namespace ferry::sqlite
