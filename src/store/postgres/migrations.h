// PostgreSQL's versioned schema migrations: the same versions and descriptions as
// sqlite/migrations.cpp (store/schema.h), in PostgreSQL's dialect. All missing ones run in
// one transaction under an advisory lock, so servers starting together on one database
// migrate it once. Append new ones; never edit a shipped one.
#pragma once

#include <vector>

#include "store/postgres/pg.h"
#include "store/schema.h"

namespace ferry::postgres {

using schema::Migration;

const std::vector<Migration>& migrations();
// Applies the missing migrations; returns the resulting version.
Result<int> migrate(pg::Connection& c);

// Advisory lock keys (pg_advisory_xact_lock): one per thing serialised across servers.
inline constexpr int64_t kMigrationLock = 0x66657272790001;  // "ferry" + 1
inline constexpr int64_t kAuditLock = 0x66657272790002;
inline constexpr int64_t kEventLock = 0x66657272790003;

}  // namespace ferry::postgres
