// SQLite's versioned schema migrations: each runs once, in order, in its own transaction,
// and records its version in schema_migrations. Append new ones (to postgres/migrations.cpp
// too, see store/schema.h); never edit a shipped one.
#pragma once

#include <vector>

#include "store/schema.h"
#include "store/sqlite/db.h"

namespace ferry::sqlite {

using schema::Migration;

const std::vector<Migration>& migrations();
// Applies the missing migrations; returns the resulting version.
Result<int> migrate(Database& db);

}  // namespace ferry::sqlite
