#include "store/sqlite/db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace ferry::sqlite {

static Status sql_error(sqlite3* db, std::string_view what) {
  const int code = sqlite3_errcode(db);
  const Code c = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? Code::kUnavailable
                 : (code == SQLITE_CONSTRAINT)                  ? Code::kAlreadyExists
                                                                : Code::kInternal;
  return Status(c, std::string(what) + ": " + sqlite3_errmsg(db));
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    prep_ = sql_error(db, "preparing SQL");
    stmt_ = nullptr;
  }
  status_ = prep_;
}

Statement::Statement(Database& db, std::string_view sql) : Statement(db.handle(), sql) {
  owner_ = &db;
  if (!prep_.ok()) owner_->note_result(sqlite3_errcode(db_), "preparing SQL");
}

Statement::~Statement() {
  if (stmt_ && owner_)
    owner_->add_vm_steps(sqlite3_stmt_status(stmt_, SQLITE_STMTSTATUS_VM_STEP, 0));
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int i, std::string_view v) {
  if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind(int i, int64_t v) {
  if (stmt_) sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

bool Statement::step() {
  if (!stmt_ || !status_.ok()) return false;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    status_ = sql_error(db_, "running SQL");
    if (owner_) owner_->note_result(rc, status_.message());
  }
  return false;
}

Status Statement::exec() {
  while (step()) {
  }
  return status_;
}

std::string Statement::text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  if (!t) return {};
  return std::string(reinterpret_cast<const char*>(t),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

int64_t Statement::integer(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return unavailable("cannot create folder " + parent.string() + ": " + ec.message());
  // The store holds token hashes, encrypted secrets and the audit: 0600, made so before
  // SQLite writes to it (its -wal and -shm files take the database file's mode).
  if (path != ":memory:" && path.rfind("file:", 0) != 0) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return unavailable("cannot open SQLite database " + path + ": " + std::strerror(errno));
    const int rc = ::fchmod(fd, 0600);
    ::close(fd);
    if (rc != 0) return unavailable("cannot set mode 0600 on " + path);
    for (const char* suffix : {"-wal", "-shm"})
      if (::chmod((path + suffix).c_str(), 0600) != 0 && errno != ENOENT)
        return unavailable("cannot set mode 0600 on " + path + suffix);
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<Database> db(new Database(raw));  // owns raw even when open failed
  if (rc != SQLITE_OK)
    return unavailable("cannot open SQLite database " + path + ": " + sqlite3_errstr(rc));
  sqlite3_busy_timeout(raw, 5000);
  // WAL: readers never block the writer; FULL: a committed state change survives
  // power loss, which the engine's commit-before-act rule depends on.
  FERRY_RETURN_IF_ERROR(db->exec("PRAGMA journal_mode=WAL"));
  FERRY_RETURN_IF_ERROR(db->exec("PRAGMA synchronous=FULL"));
  FERRY_RETURN_IF_ERROR(db->exec("PRAGMA foreign_keys=ON"));
  return db;
}

Database::~Database() {
  sqlite3_close_v2(db_);
}

Status Database::exec(std::string_view sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    note_result(rc, msg);
    return internal_error("SQL failed: " + msg);
  }
  return Status::Ok();
}

bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

void Database::note_result(int rc, std::string_view what) {
  if (!is_corruption(rc)) return;
  std::lock_guard lock(health_mu_);
  if (health_.ok())
    health_ = Status(Code::kUnavailable, "the store's database file is corrupted (" +
                                             std::string(what.substr(0, 300)) + ")");
}

Status Database::health() const {
  std::lock_guard lock(health_mu_);
  return health_;
}

Result<std::vector<std::string>> Database::check(bool full, int max_errors, int64_t max_ms) {
  struct Budget {
    std::chrono::steady_clock::time_point until;
    bool expired = false;
  } budget{std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms)};
  if (max_ms > 0)
    sqlite3_progress_handler(
        db_, 10'000,
        [](void* p) {
          auto* b = static_cast<Budget*>(p);
          b->expired = std::chrono::steady_clock::now() > b->until;
          return b->expired ? 1 : 0;
        },
        &budget);
  std::vector<std::string> problems;
  Status st;
  {
    Statement q(db_, std::string("PRAGMA ") + (full ? "integrity_check(" : "quick_check(") +
                         std::to_string(std::max(1, max_errors)) + ")");
    while (q.step()) {
      std::string row = q.text(0);
      if (row != "ok") problems.push_back(std::move(row));
    }
    st = q.status();
  }
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  if (budget.expired)
    return deadline_exceeded(std::string(full ? "integrity_check" : "quick_check") +
                             " did not finish within " + std::to_string(max_ms) + " ms");
  if (!st.ok()) {
    // A file too damaged to check is itself the answer.
    if (!is_corruption(sqlite3_errcode(db_))) return st;
    problems.push_back(st.message());
  }
  if (!problems.empty()) note_result(SQLITE_CORRUPT, problems.front());
  return problems;
}

Transaction::Transaction(Database& db) : db_(db) {
  begin_ = db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_ && begin_.ok()) (void)db_.exec("ROLLBACK");
}

Status Transaction::commit() {
  FERRY_RETURN_IF_ERROR(begin_);
  done_ = true;
  return db_.exec("COMMIT");
}

}  // namespace ferry::sqlite
