// ControlPlane: `ferry server`. It loads ferry.yaml, opens the store, starts (or finds)
// the local agent and connects the remote ones, runs the engine, and serves the HTTP
// API (docs/api.md) with token auth, the event stream and the audit chain.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/http_agent_client.h"
#include "analysis/analysis.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/log.h"
#include "core/spec.h"
#include "engine/engine.h"
#include "governance/secret_box.h"
#include "notify/dispatcher.h"
#include "ops/backup_scheduler.h"
#include "server/auth.h"
#include "server/chaos_service.h"
#include "server/data_dir_lock.h"
#include "server/event_hub.h"
#include "server/leader.h"
#include "server/local_agent.h"
#include "server/server_metrics.h"
#include "server/slo_service.h"
#include "store/store.h"

namespace ferry {

class AgentTrust;        // server/agent_trust.h
class RevocationPusher;  // server/revocation_push.h

struct ServerOptions {
  std::string config_path = "ferry.yaml";
  std::string listen;     // overrides server.listen
  std::string store_url;  // overrides server.store
  std::string
      agent_listen;  // local agent address: "" = unix:DATA_DIR/agent.sock, HOST:PORT, unix:PATH
  bool local_agent = true;  // false: only the agents listed in ferry.yaml
  std::string log_level = "info";
  std::string log_file;            // "" = stderr
  int audit_head_log_ms = 60'000;  // how often the audit head is logged ("audit head")
  int slo_collect_ms = 10'000;     // how often the SLO collector reads the routers
  int metrics_agents_ms = 2'000;   // how often /metrics' copy of the agents' figures is read
};

// Denials (403) are audited once per token and route per minute: the first of a minute
// is written with `count` = the denials since the previous entry for that key (itself
// included); the others are only counted. Thread-safe; at most kMaxKeys keys are kept.
class DenialLimiter {
 public:
  static constexpr size_t kMaxKeys = 10'000;
  // The count to audit now, or nullopt when this denial is only counted.
  std::optional<int64_t> record(const std::string& key, std::chrono::steady_clock::time_point now);

 private:
  struct Window {
    std::chrono::steady_clock::time_point audited_at;
    int64_t pending = 0;  // denials since the last audited one
  };
  std::mutex mu_;
  std::map<std::string, Window> windows_;
};

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> create(ServerOptions options);
  ~ControlPlane();

  // Starts the local agent (unless one answers already), the engine and the API.
  Status start();
  void stop();
  uint16_t port() const { return http_ ? http_->port() : 0; }
  std::string address() const { return http_ ? http_->address() : ""; }

  // The audit chain's last entry (seq 0 when empty), and its head as "SEQ:HASH".
  Result<AuditRecord> audit_head();
  std::string audit_head_text();
  const std::string& audit_key() const { return audit_key_; }

  // Appends a sealed audit entry; failures are logged (the action already happened).
  void audit(const std::string& actor, const std::string& action, const std::string& app,
             const std::string& env, const std::string& release, const std::string& source,
             Json details = Json::object());

  // Used by the route files.
  Store& store() { return *store_; }
  Engine& engine() { return *engine_; }
  Authenticator& auth() { return *auth_; }
  EventHub& events() { return hub_; }
  Clock& clock() { return clock_; }
  Logger& log() { return *log_; }
  std::shared_ptr<const Config> config() const;
  std::vector<AgentClient*> agents_for(const std::string& env);
  // Every agent by name ("local" for the server's own).
  std::vector<std::pair<std::string, HttpAgentClient*>> agent_clients();
  const ServerOptions& options() const { return opts_; }
  const SecretBox& secret_box() const { return *secret_box_; }
  Masker& masker() { return *masker_; }
  ServerMetrics& metrics() { return *metrics_; }
  SloService& slo() { return *slo_; }
  ChaosService& chaos() { return *chaos_; }
  // Pushes DATA_DIR/tls/revoked to the enrolled agents (null before start()).
  RevocationPusher* revocations() { return revocation_push_.get(); }
  // Several servers on one PostgreSQL store: the elector (null with SQLite, where this
  // server always leads). Only the leader runs the engine, the reconciler and the jobs.
  const LeaderElector* leader() const { return leader_.get(); }
  bool is_leader() const { return !ha_ || leader_->is_leader(); }
  // A standby's answer to a write: the request sent on to the leader and its answer, or
  // 503 when no leader is known (docs/api.md, "Several servers").
  HttpResponse forward_to_leader(const HttpRequest& req);
  // Scheduled backups; null when server.backups is not set.
  const ops::BackupScheduler* backups() const { return backups_.get(); }
  // Decrypted secrets of an app in an environment (for injection into instances).
  std::map<std::string, std::string> secrets_for(const std::string& app, const std::string& env);

 private:
  explicit ControlPlane(ServerOptions options);
  GateDecision check_gates(const DeploymentRecord& d);
  void handle_event(const DeploymentEvent& e, const DeploymentRecord& d);
  void on_backup(const ops::BackupOutcome& o);
  void add_routes();
  // What only the leader runs: started when elected, stopped when it steps down.
  void start_leader_work(int64_t token);
  void stop_leader_work(const std::string& why);

  ServerOptions opts_;
  std::vector<DataDirLock> locks_;  // held for the object's lifetime (data_dir_lock.h)
  std::shared_ptr<const Config> config_;
  std::unique_ptr<Logger> log_;
  std::shared_ptr<Masker> masker_;
  SystemClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<SecretBox> secret_box_;
  std::string audit_key_;  // HMAC key of the audit chain (governance/audit_chain.h)
  std::unique_ptr<LocalAgent> local_agent_;
  std::unique_ptr<AgentTrust> agent_trust_;  // how agents_ are called; outlives them
  std::map<std::string, std::unique_ptr<HttpAgentClient>> agents_;  // by agent name
  std::unique_ptr<RevocationPusher> revocation_push_;               // uses agents_, agent_trust_
  HttpPromQueryClient prom_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> http_;
  EventHub hub_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Dispatcher> notifier_;
  std::set<std::string> approval_notified_;
  DenialLimiter denials_;  // deployments whose approval request went out
  // Watches the local agent and restarts it when it dies.
  std::thread watchdog_;
  std::thread head_logger_;                        // logs the audit head every audit_head_log_ms
  std::unique_ptr<ops::BackupScheduler> backups_;  // server.backups (none when not set)
  bool ha_ = false;                                // the store has a leader lease
  std::unique_ptr<LeaderElector> leader_;          // PostgreSQL stores only
  std::unique_ptr<SloService> slo_;                // collector (leader only) and SLO reads
  std::unique_ptr<ChaosService> chaos_;            // game days (`ferry chaos`)
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool stopping_ = false;
};

// Route groups (one file each).
void add_health_routes(HttpServer& http, ControlPlane& cp);
void add_deployment_routes(HttpServer& http, ControlPlane& cp);
void add_release_routes(HttpServer& http, ControlPlane& cp);
void add_admin_routes(HttpServer& http, ControlPlane& cp);       // tokens, audit, whoami
void add_enroll_routes(HttpServer& http, ControlPlane& cp);      // agents' mutual TLS
void add_governance_routes(HttpServer& http, ControlPlane& cp);  // approvals, secrets, overrides
// The web dashboard: embedded assets at / (dashboard_routes.cpp).
void add_dashboard_routes(HttpServer& http, ControlPlane& cp);

// The principal the auth middleware put on the request.
Principal principal_of(const HttpRequest& req);
// A route's permission check: nullopt when allowed, else the 403 answer.
std::optional<HttpResponse> require(const HttpRequest& req, Role need, const std::string& env = {});

// Whether the request's token may see `env` (its environment scope; "" = not
// environment-specific, always visible). Reads filter by this.
bool env_visible(const HttpRequest& req, const std::string& env);

// The request body as a JSON object: invalid JSON, a number out of range or any other
// type (an array, a string) is an invalid_argument (400) naming the field or the shape;
// an empty body is {} when `empty_ok`.
Result<Json> object_body(const HttpRequest& req, bool empty_ok = false);

// A string field of a JSON body: absent or null is "" (or an error when `required`),
// another type or more than `max_bytes` is an invalid_argument naming the field.
Result<std::string> string_field(const Json& body, const char* name, bool required = true,
                                 size_t max_bytes = 128);

Json deployment_json(const DeploymentRecord& d);
// Whether `e` is an admin's override of `gate` ("window": windows and freezes, the
// default of an override that names none; "slo": the error-budget gate).
bool is_override_of(const DeploymentEvent& e, std::string_view gate);
// SLO routes: GET /api/v1/slo, GET /api/v1/slo/{app}/{env} (slo_routes.cpp).
void add_slo_routes(HttpServer& http, ControlPlane& cp);
// Game days: /api/v1/chaos (chaos_routes.cpp).
void add_chaos_routes(HttpServer& http, ControlPlane& cp);
Json event_json(const DeploymentEvent& e);

}  // namespace ferry
