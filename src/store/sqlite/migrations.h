// Versioned schema migrations: each runs once, in order, in its own transaction, and
// records its version in schema_migrations. Append new ones; never edit a shipped one.
#pragma once

#include <string_view>
#include <vector>

#include "store/sqlite/db.h"

namespace ferry::sqlite {

struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;
};

const std::vector<Migration>& migrations();
// Applies the missing migrations; returns the resulting version.
Result<int> migrate(Database& db);

}  // namespace ferry::sqlite
