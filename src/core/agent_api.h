// The contract between the control plane and an agent: desired state per app (idempotent,
// last write wins by generation) and what the agent reports back. The engine talks to
// agents only through AgentClient; src/agent implements the HTTP server side and an
// HttpAgentClient. JSON field names here are the wire format of the agent API
// (docs/agent.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "core/spec.h"

namespace ferry {

// One instance the agent must keep running.
struct InstanceSpec {
  std::string id;        // unique on the agent, e.g. "web-v2-0"
  std::string release;   // release version this instance runs, e.g. "v2"
  RunSpec run;           // env already includes injected secrets; never logged
  ChecksSpec checks;
  uint16_t port = 0;     // 0: the agent assigns a free port and reports it
};

// Everything the agent should run and route for one app.
struct AppDesiredState {
  std::string app;                      // the agent's name for it: "<app>.<env>"
  // The app and environment it belongs to, passed explicitly (the agent gives instances
  // FERRY_APP and FERRY_ENV from these); empty from a server that predates them.
  std::string app_name;
  std::string env;
  int64_t generation = 0;               // higher wins; an older put is ignored
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;             // router's public port; 0 = no router
  std::map<std::string, int> weights;   // release → weight (any non-negative scale)
  std::vector<InstanceSpec> instances;  // instances not listed are drained and stopped
  // The release the router treats as known-good (the canary shield retries on it); empty:
  // the release with the most weight.
  std::string stable_release;
  RouterSpec router;  // trust, shield, affinity and body deadline of the app's router
};

enum class InstanceState { kStarting, kReady, kUnready, kCrashed, kStopping, kStopped };
std::string_view to_string(InstanceState s);
InstanceState instance_state_from_string(std::string_view s);

struct InstanceStatus {
  std::string id;
  std::string release;
  InstanceState state = InstanceState::kStarting;
  int pid = 0;
  uint16_t port = 0;
  int restarts = 0;
  int last_exit_code = 0;      // of the last exit, or -signal
  int64_t started_at_ms = 0;   // unix ms
  int64_t ready_at_ms = 0;     // unix ms; 0 = not ready yet
  std::string message;         // last probe failure, crash reason
};

// Latency histogram bucket upper bounds in milliseconds, shared by router and analysis.
const std::vector<double>& latency_buckets_ms();

// Router counters for one release since the router started (cumulative).
struct ReleaseStats {
  std::string release;
  uint64_t requests = 0;
  uint64_t status_1xx = 0, status_2xx = 0, status_3xx = 0, status_4xx = 0, status_5xx = 0;
  uint64_t upstream_errors = 0;        // connect failures / resets answered 502 by the router
  std::vector<uint64_t> latency_counts;  // per latency_buckets_ms(), plus one overflow bucket
  double latency_sum_ms = 0;
  // The most recent latencies (ms), newest last, at most a few thousand; with
  // `sample_seq` (samples ever taken) a reader can tell which are new since its last read.
  std::vector<double> recent_latencies_ms;
  uint64_t sample_seq = 0;
  int active_requests = 0;
  // Requests this release failed (5xx or no answer) that the canary shield answered from
  // the stable release instead; each is also counted above as the failure it was.
  uint64_t shielded = 0;
  // Requests pinned to this release with the pin header: counted only here, never above,
  // so pinned traffic cannot steer the analysis.
  uint64_t pinned_requests = 0;
  uint64_t pinned_5xx = 0;
  // The SLO's second counter set: requests and 5xx not on a path of
  // RouterSpec::slo_exclude_paths (with no paths excluded, equal to requests and status_5xx).
  uint64_t slo_requests = 0;
  uint64_t slo_5xx = 0;
};

// The app's edge as its router and the agent's ACME client see it: certificate reloads,
// access log lines, and the ACME certificate's state (docs/router.md, "Status and metrics").
struct EdgeStatus {
  bool tls = false;         // the router terminates TLS
  bool access_log = false;  // … and writes an access log
  uint64_t tls_reloads = 0;          // certificate sets a reload loaded since the router started
  uint64_t tls_reload_failures = 0;  // reloads that failed (the previous set kept serving)
  std::string tls_error;             // the last reload's error; empty when it succeeded
  uint64_t access_log_written = 0;   // lines since the router started
  uint64_t access_log_dropped = 0;   // lines lost: queue full or a write error
  std::string router_error;          // the router could not be (re)started on its port
  // HTTP/2 connections cut off for abuse (Router::h2_abuse), by reason.
  uint64_t h2_abuse_rapid_reset = 0;
  uint64_t h2_abuse_flood = 0;
  uint64_t h2_abuse_protocol_error = 0;
  // ACME (tls.acme), else acme_state is empty.
  std::string acme_state;         // "pending" (no certificate yet), "valid", "failing"
  int64_t cert_not_after_ms = 0;  // unix ms of the certificate served (0: placeholder)
  int64_t acme_renew_at_ms = 0;   // when the agent renews it (2/3 of its lifetime, jittered)
  int64_t acme_next_attempt_ms = 0;  // the next order after a failure (0: none pending)
  uint64_t acme_issued = 0;          // certificates obtained since the agent started
  uint64_t acme_failures = 0;        // failed orders since the agent started
  std::string acme_error;            // the last failure; cleared by a success
  bool operator==(const EdgeStatus&) const = default;
};

struct AppStatus {
  std::string app;
  int64_t generation = 0;          // the desired state's (accepted) generation
  int64_t applied_generation = 0;  // the generation whose instances the agent has started
  std::map<std::string, int> weights;
  std::vector<InstanceStatus> instances;
  std::vector<ReleaseStats> releases;   // router stats per release
  EdgeStatus edge;
};

// The name an app has on an agent: one router and set of instances per environment,
// so "<app>.<env>" (e.g. "web.production").
std::string agent_app_name(const std::string& app, const std::string& env);

// Thread safety: every method may be called from any thread, concurrently (the engine
// calls all agents of an environment in parallel).
class AgentClient {
 public:
  virtual ~AgentClient() = default;
  // The agent's name in ferry.yaml (`agents.NAME`, "local" for the server's own): how
  // events, logs, metrics and `ferry status` name it.
  virtual std::string name() const { return "local"; }
  // Where it is reached ("10.0.0.2:7071", "unix:/data/agent.sock"), for messages.
  virtual std::string address() const { return "in-process"; }
  // Ok when the agent answers (its health endpoint); the error names the agent otherwise.
  virtual Status health() { return Status::Ok(); }
  // Sets the whole desired state of one app (instances and weights). Idempotent. An agent
  // accepts it at once and converges in the background: callers watch app_status()
  // (applied_generation, instance states) rather than wait on this call.
  virtual Status put_app(const AppDesiredState& state) = 0;
  // Changes only the weights (the fast path of a canary step or a rollback).
  virtual Status set_weights(const std::string& app, int64_t generation,
                             const std::map<std::string, int>& weights) = 0;
  virtual Result<AppStatus> app_status(const std::string& app) = 0;
  // Stops every instance and the router of the app.
  virtual Status remove_app(const std::string& app) = 0;
};

// Whether an AgentClient call failed because the agent did not answer (a partition, a
// dead host, a timeout) rather than because it answered with a refusal.
inline bool is_unreachable(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded;
}

void to_json(Json& j, const ProbeSpec& p);
void from_json(const Json& j, ProbeSpec& p);
void to_json(Json& j, const ChecksSpec& c);
void from_json(const Json& j, ChecksSpec& c);
void to_json(Json& j, const RunSpec& r);
void from_json(const Json& j, RunSpec& r);
void to_json(Json& j, const InstanceSpec& s);
void from_json(const Json& j, InstanceSpec& s);
void to_json(Json& j, const RouterSpec& r);
void from_json(const Json& j, RouterSpec& r);
void to_json(Json& j, const AppDesiredState& s);
void from_json(const Json& j, AppDesiredState& s);
void to_json(Json& j, const InstanceStatus& s);
void from_json(const Json& j, InstanceStatus& s);
void to_json(Json& j, const ReleaseStats& s);
void from_json(const Json& j, ReleaseStats& s);
void to_json(Json& j, const AppStatus& s);
void from_json(const Json& j, AppStatus& s);

}  // namespace ferry
