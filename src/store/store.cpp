#include "store/store.h"

#include <algorithm>
#include <array>

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

// Longer prefixes first: "sqlite://" before "sqlite:".
constexpr std::array<StoreScheme, 2> kSchemes = {{
    {"sqlite://", "sqlite:.ferry/ferry.db", open_sqlite, check_sqlite, validate_sqlite},
    {"sqlite:", "sqlite:.ferry/ferry.db", open_sqlite, check_sqlite, validate_sqlite},
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

}  // namespace ferry
