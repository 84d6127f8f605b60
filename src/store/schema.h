// What the SQLite and PostgreSQL stores share about their schema: the migration shape,
// the column lists, the one-deployment-in-progress rule and its error. Each backend keeps
// its own migration list (the SQL dialects differ) with the same versions and
// descriptions, so a database of either kind at version N holds the same tables;
// tests/store/migrations_test.cpp checks the two lists agree. To add a migration: append
// one entry with the next version to both sqlite/migrations.cpp and
// postgres/migrations.cpp.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace ferry::schema {

struct Migration {
  int version;
  std::string description;
  std::string sql;  // may hold several statements
};

// "'succeeded', 'failed', 'rolled_back', 'aborted'": the final states of
// core/deployment_state.h, quoted for an SQL IN list.
std::string final_states_sql();

// The partial unique index that keeps one deployment in progress per app and
// environment; its name is how PostgreSQL reports which constraint a row broke.
inline constexpr std::string_view kOneActiveIndex = "deployments_one_active";
// CREATE UNIQUE INDEX deployments_one_active ... WHERE state NOT IN (final states):
// the same statement in both dialects.
std::string one_active_index_sql();

// The error create_deployment returns when the rule holds it back (store/store.h).
Status active_deployment_exists(std::string_view app, std::string_view env);

inline constexpr const char* kReleaseCols =
    "app, version, git_sha, artifact, config, scan_status, scan_summary, created_by, "
    "created_at_ms";
inline constexpr const char* kDeploymentCols =
    "id, app, env, release, previous_release, state, strategy, plan, current_step, step_state, "
    "reason, requested_by, generation, created_at_ms, updated_at_ms, finished_at_ms, version";
inline constexpr const char* kEventCols = "seq, deployment_id, time_ms, type, step, message, data";
inline constexpr const char* kTokenCols =
    "id, name, hash, role, envs, created_by, created_at_ms, expires_at_ms, revoked";
inline constexpr const char* kAuditCols =
    "seq, time_ms, actor, action, app, env, release, git_sha, source_addr, details, prev_hash, "
    "hash";

}  // namespace ferry::schema
