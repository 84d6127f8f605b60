// Thin RAII wrappers over libpq: a connection, a result, and the mapping of PostgreSQL's
// errors (SQLSTATE) to ferry's Status codes. Parameters travel as text, separately from
// the SQL ($1, $2, ...): never spliced into a statement.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry::pg {

// One query parameter: text, or SQL NULL.
using Param = std::optional<std::string>;
inline Param p(std::string_view v) {
  return std::string(v);
}
inline Param p(const std::string& v) {
  return v;
}
inline Param p(const char* v) {
  return std::string(v);
}
inline Param p(int64_t v) {
  return std::to_string(v);
}
inline Param p(int v) {
  return std::to_string(v);
}
inline Param p(bool v) {
  return std::string(v ? "true" : "false");
}

// An owned PGresult with typed column reads (row and column from 0).
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r, &PQclear) {}
  int size() const { return PQntuples(r_.get()); }
  bool empty() const { return size() == 0; }
  std::string text(int row, int col) const;
  int64_t integer(int row, int col) const;
  bool boolean(int row, int col) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

// What failed in the last statement, beyond the Status: the SQLSTATE and, for a
// constraint violation, the constraint's name (how the one-active-deployment rule is
// recognised without reading a message).
struct ErrorInfo {
  std::string sqlstate;
  std::string constraint;
};

// SQLSTATE → Code: 23505 kAlreadyExists, 23503 kFailedPrecondition, 40001/40P01
// kConflict, connection classes (08, 57P01-03) and a lost connection kUnavailable.
Code code_for_sqlstate(std::string_view sqlstate);

class Connection {
 public:
  // Connects with a bounded wait (connect_timeout) to `conninfo` (a postgres:// URL or
  // key=value string). Errors never repeat the conninfo (it may carry a password).
  static Result<std::unique_ptr<Connection>> connect(const std::string& conninfo, int timeout_s);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with parameters; the rows, or an error (details in last_error()).
  Result<Rows> query(std::string_view sql, const std::vector<Param>& params = {});
  // Runs a statement and wants no rows back.
  Status exec(std::string_view sql, const std::vector<Param>& params = {});
  // Runs a script of several statements without parameters (migrations).
  Status exec_script(std::string_view sql);

  // False once the server is gone (the connection must be replaced).
  bool healthy() const;
  const ErrorInfo& last_error() const { return last_; }

 private:
  explicit Connection(PGconn* c) : c_(c) {}
  Status fail(PGresult* r, std::string_view what);
  PGconn* c_;
  ErrorInfo last_;
};

// BEGIN … COMMIT, rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Connection& c);
  ~Transaction();
  const Status& begin_status() const { return begin_; }
  Status commit();

 private:
  Connection& c_;
  Status begin_;
  bool done_ = false;
};

}  // namespace ferry::pg
