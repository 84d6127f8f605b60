#include "store/store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>

#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"

namespace ferry {
namespace {

// One row per URL scheme a store can be opened with. A backend is added here and
// nowhere else: `ferry validate`, `ferry server` and `ferry store` all ask this table.
struct StoreScheme {
  std::string_view prefix;  // what the URL starts with
  std::string_view example;
  // The part after the prefix → the store; `check` runs `ferry store check`.
  Result<std::unique_ptr<Store>> (*open)(const std::string& url, std::string_view rest);
  Result<std::vector<std::string>> (*check)(const std::string& url, std::string_view rest);
  Status (*validate)(const std::string& url, std::string_view rest);
  std::string (*restore_steps)();
};

Status validate_sqlite(const std::string& url, std::string_view rest) {
  if (rest.empty()) return invalid_argument("store URL '" + url + "' names no file");
  return Status::Ok();
}

Result<std::unique_ptr<Store>> open_sqlite(const std::string& url, std::string_view rest) {
  FERRY_RETURN_IF_ERROR(validate_sqlite(url, rest));
  auto s = SqliteStore::open(std::string(rest));
  if (!s.ok()) return s.status();
  return std::unique_ptr<Store>(std::move(*s));
}

Result<std::vector<std::string>> check_sqlite(const std::string& url, std::string_view rest) {
  FERRY_RETURN_IF_ERROR(validate_sqlite(url, rest));
  return SqliteStore::check_file(std::string(rest));
}

// The password of a postgres:// URL (user:PASSWORD@host), so no message repeats it.
std::string url_password(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  const auto at = url.find('@', scheme_end + 3);
  if (at == std::string::npos) return "";
  const auto colon = url.find(':', scheme_end + 3);
  if (colon == std::string::npos || colon > at) return "";
  return url.substr(colon + 1, at - colon - 1);
}

Status validate_postgres(const std::string& url, std::string_view) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (opts) {
    // libpq checks a port only when it connects; validation must refuse it now.
    std::string port;
    for (auto* o = opts; o->keyword; ++o)
      if (std::string_view(o->keyword) == "port" && o->val) port = o->val;
    PQconninfoFree(opts);
    for (size_t start = 0; !port.empty() && start <= port.size();) {
      const size_t end = std::min(port.find(',', start), port.size());
      const std::string one = port.substr(start, end - start);
      const bool digits = !one.empty() && one.size() <= 5 &&
                          one.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::stoi(one) < 1 || std::stoi(one) > 65535)
        return invalid_argument("store URL port '" + one.substr(0, 16) +
                                "' is not a port: allowed 1-65535");
      start = end + 1;
    }
    return Status::Ok();
  }
  std::string m = err ? err : "cannot be parsed";
  if (err) PQfreemem(err);
  while (!m.empty() && m.back() == '\n') m.pop_back();
  const std::string password = url_password(url);
  for (size_t at; !password.empty() && (at = m.find(password)) != std::string::npos;)
    m.replace(at, password.size(), "***");
  return invalid_argument("store URL is not a valid PostgreSQL URL (" + m +
                          "); use postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
}

Result<std::unique_ptr<Store>> open_postgres(const std::string& url, std::string_view rest) {
  FERRY_RETURN_IF_ERROR(validate_postgres(url, rest));
  auto s = PgStore::open(url);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Store>(std::move(*s));
}

Result<std::vector<std::string>> check_postgres(const std::string& url, std::string_view rest) {
  FERRY_RETURN_IF_ERROR(validate_postgres(url, rest));
  return PgStore::check_url(url);
}

// Longer prefixes first: "sqlite://" before "sqlite:".
constexpr std::array<StoreScheme, 4> kSchemes = {{
    {"sqlite://", "sqlite:.ferry/ferry.db", open_sqlite, check_sqlite, validate_sqlite,
     SqliteStore::sqlite_restore_steps},
    {"sqlite:", "sqlite:.ferry/ferry.db", open_sqlite, check_sqlite, validate_sqlite,
     SqliteStore::sqlite_restore_steps},
    {"postgres://", "postgres://ferry@db.internal/ferry", open_postgres, check_postgres,
     validate_postgres, PgStore::pg_restore_steps},
    {"postgresql://", "postgresql://ferry@db.internal/ferry", open_postgres, check_postgres,
     validate_postgres, PgStore::pg_restore_steps},
}};

Result<const StoreScheme*> find_scheme(const std::string& url) {
  for (const auto& s : kSchemes)
    if (url.starts_with(s.prefix)) return &s;
  std::string known;
  for (const auto& s : kSchemes) {
    // One spelling of each is enough in the message.
    if (s.prefix == "sqlite://" || s.prefix == "postgresql://") continue;
    if (!known.empty()) known += " or ";
    known += std::string(s.prefix) + (s.prefix == "sqlite:" ? "PATH" : "USER@HOST/DATABASE");
    known += " (e.g. " + std::string(s.example) + ")";
  }
  // Only the scheme is shown: the rest of a URL may carry a password.
  const auto colon = url.find(':');
  const std::string scheme = colon == std::string::npos ? url.substr(0, 16) : url.substr(0, colon);
  return invalid_argument("store URL scheme '" + scheme + "' is not supported; use " + known);
}

}  // namespace

Status validate_store_url(const std::string& url) {
  auto s = find_scheme(url);
  if (!s.ok()) return s.status();
  return (*s)->validate(url, std::string_view(url).substr((*s)->prefix.size()));
}

Result<std::unique_ptr<Store>> open_store(const std::string& url) {
  auto s = find_scheme(url);
  if (!s.ok()) return s.status();
  return (*s)->open(url, std::string_view(url).substr((*s)->prefix.size()));
}

Result<std::vector<std::string>> check_store(const std::string& url) {
  auto s = find_scheme(url);
  if (!s.ok()) return s.status();
  return (*s)->check(url, std::string_view(url).substr((*s)->prefix.size()));
}

std::string store_restore_steps(const std::string& url) {
  auto s = find_scheme(url);
  if (!s.ok()) return "restore the store from its newest backup (docs/runbook.md)";
  return (*s)->restore_steps();
}

}  // namespace ferry
