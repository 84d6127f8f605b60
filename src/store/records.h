// Records: what the store keeps. Plain values; JSON columns hold specs and plans.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "core/deployment_state.h"

namespace ferry {

struct ReleaseRecord {
  std::string app;
  std::string version;  // unique per app, immutable once created
  std::string git_sha;
  std::string artifact;                     // command path or image reference
  Json config = Json::object();             // the app spec snapshot the release deploys with
  std::string scan_status = "not_scanned";  // clean | findings | overridden | not_scanned
  Json scan_summary = Json::object();
  std::string created_by;
  int64_t created_at_ms = 0;
};

// A deployment; its lifecycle (states, events, which states are final) is
// core/deployment_state.h.
struct DeploymentRecord {
  std::string id;  // "d-<hex>"
  std::string app;
  std::string env;
  std::string release;           // version being deployed
  std::string previous_release;  // stable version when it started ("" for the first)
  DeploymentState state = DeploymentState::kPending;
  std::string strategy;       // immediate | rolling | blue_green | canary
  Json plan = Json::array();  // the steps, from core/plan.h
  int current_step = -1;      // index into plan; -1 before the first
  std::string step_state;     // "" | running | done: with current_step, what to resume
  std::string reason;         // why it waits, failed or rolled back
  std::string requested_by;
  int64_t generation = 0;  // agent desired-state generation last written
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t finished_at_ms = 0;
  int64_t version = 0;  // optimistic concurrency: bumped by every update
};

struct DeploymentEvent {
  int64_t seq = 0;  // global, increasing
  std::string deployment_id;
  int64_t time_ms = 0;
  EventType type = EventType::kCreated;
  int step = -1;
  std::string message;
  Json data = Json::object();
};

struct DeploymentFilter {
  std::string app;
  std::string env;
  bool active_only = false;  // not in a final state
  int limit = 50;
};

struct TokenRecord {
  std::string id;  // the public part of the token
  std::string name;
  std::string hash;               // SHA-256 of the whole token, hex
  std::string role;               // viewer | deployer | approver | admin
  std::vector<std::string> envs;  // empty: every environment
  std::string created_by;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;  // 0: never
  bool revoked = false;
};

struct AuditRecord {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string actor;
  std::string action;
  std::string app, env, release, git_sha;
  std::string source_addr;
  Json details = Json::object();
  std::string prev_hash;
  std::string hash;
};

struct ApprovalRecord {
  std::string app, env, release;
  std::string approver;
  std::string comment;
  int64_t at_ms = 0;
};

struct SecretRecord {
  std::string app, env, name;
  std::string ciphertext;  // nonce || ciphertext || tag, hex
  int64_t updated_at_ms = 0;
  std::string updated_by;
};

// Which release an app runs in an environment, and which ones succeeded there.
struct EnvReleaseRecord {
  std::string app, env;
  std::string release;  // current stable release
  std::string deployment_id;
  int64_t at_ms = 0;
};

// What one agent should run for one app in one environment (the reconciler drives the
// agent to it, engine/reconciler.h). `spec` describes the desired state without secret
// values (releases, counts, weight); the server rebuilds the agent's state from it.
struct AgentDesiredRecord {
  std::string agent;  // agents.NAME, "local" for the server's own
  std::string app, env;
  int64_t generation = 0;
  Json spec = Json::object();
  std::string deployment_id;  // the deployment that set it ("" = a refresh)
  int64_t updated_at_ms = 0;
};

// SLOs (docs/slo.md): the requests an app served in an environment during one period
// (a minute; older ones compacted into hours), summed over its agents and releases.
struct SloBucketRecord {
  std::string app, env;
  int64_t start_ms = 0;       // the period's start (a whole minute or hour)
  int64_t width_ms = 60'000;  // 60'000 or 3'600'000
  int64_t requests = 0;
  int64_t errors = 0;            // 5xx answers
  std::vector<int64_t> latency;  // per latency_buckets_ms() plus overflow
};

// The router counters the SLO collector last read for one release on one agent, so the
// next read (by this server after a restart, or by the next leader) counts only what is
// new. `counters`: {"requests", "status_5xx", "latency_counts"}.
struct SloCursorRecord {
  std::string agent, app, env, release;
  Json counters = Json::object();
  int64_t seen_at_ms = 0;
};

}  // namespace ferry
