#include "store/postgres/pg.h"

#include <charconv>

namespace ferry::pg {

std::string Rows::text(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  return v ? std::string(v, static_cast<size_t>(PQgetlength(r_.get(), row, col))) : "";
}

int64_t Rows::integer(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  int64_t out = 0;
  if (v) std::from_chars(v, v + PQgetlength(r_.get(), row, col), out);
  return out;
}

bool Rows::boolean(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  return v && v[0] == 't';
}

int64_t Rows::affected() const {
  const char* v = PQcmdTuples(r_.get());
  int64_t out = 0;
  if (v && *v) std::from_chars(v, v + std::char_traits<char>::length(v), out);
  return out;
}

Code code_for_sqlstate(std::string_view s) {
  if (s == "23505") return Code::kAlreadyExists;
  if (s == "23503") return Code::kFailedPrecondition;
  if (s == "40001" || s == "40P01") return Code::kConflict;
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03")
    return Code::kUnavailable;
  return Code::kInternal;
}

namespace {

// libpq's messages end with a newline and may span lines; one line reads better in logs.
std::string one_line(const char* m) {
  std::string out = m ? m : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  for (char& ch : out)
    if (ch == '\n') ch = ' ';
  return out;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& conninfo,
                                                        int timeout_s) {
  // The URL and our overrides as two parallel keyword lists; expand_dbname lets the
  // first "dbname" be a whole URL or key=value string.
  const std::string timeout = std::to_string(timeout_s);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* vals[] = {conninfo.c_str(), timeout.c_str(), "ferry", nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, 1);
  if (c == nullptr) return unavailable("PostgreSQL: out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = one_line(PQerrorMessage(c));
    PQfinish(c);
    return unavailable("PostgreSQL cannot be reached: " + m);
  }
  // Quiet NOTICEs (CREATE TABLE IF NOT EXISTS ...) instead of printing them on stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(c));
}

Connection::~Connection() {
  PQfinish(c_);
}

bool Connection::healthy() const {
  return PQstatus(c_) == CONNECTION_OK;
}

Status Connection::fail(PGresult* r, std::string_view what) {
  last_ = {};
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const char* constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : nullptr;
  if (state) last_.sqlstate = state;
  if (constraint) last_.constraint = constraint;
  std::string m = one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c_));
  if (m.empty()) m = one_line(PQerrorMessage(c_));
  Code code = code_for_sqlstate(last_.sqlstate);
  if (!healthy()) code = Code::kUnavailable;  // the server went away mid-statement
  if (r) PQclear(r);
  return Status(code, std::string(what) + ": " + m);
}

Result<Rows> Connection::query(std::string_view sql, const std::vector<Param>& params) {
  const std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& v : params) values.push_back(v ? v->c_str() : nullptr);
  PGresult* r = PQexecParams(c_, text.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return fail(r, "PostgreSQL");
  last_ = {};
  return Rows(r);
}

Status Connection::exec(std::string_view sql, const std::vector<Param>& params) {
  auto r = query(sql, params);
  return r.ok() ? Status::Ok() : r.status();
}

Status Connection::exec_script(std::string_view sql) {
  const std::string text(sql);
  PGresult* r = PQexec(c_, text.c_str());
  const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return fail(r, "PostgreSQL");
  PQclear(r);
  return Status::Ok();
}

Transaction::Transaction(Connection& c) : c_(c), begin_(c.exec("BEGIN")) {}

Transaction::~Transaction() {
  if (!done_ && begin_.ok() && c_.healthy()) (void)c_.exec("ROLLBACK");
}

Status Transaction::commit() {
  Status s = c_.exec("COMMIT");
  done_ = true;
  return s;
}

}  // namespace ferry::pg
