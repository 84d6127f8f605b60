// Specs: what ferry.yaml says, as plain values. src/config builds them (with
// file:line:column errors); the engine, planner and governance read them. No I/O here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/slo_spec.h"

namespace ferry {

// A probe of one instance.
struct ProbeSpec {
  enum class Kind { kNone, kHttp, kTcp, kCommand };
  Kind kind = Kind::kNone;
  std::string path = "/";            // http
  int expect_status = 200;           // http: this status (or any 2xx when 0)
  std::vector<std::string> command;  // command: exit 0 is success
  int interval_ms = 1000;
  // After success_threshold successes in a row, probes are this far apart until a failure
  // (which returns to interval_ms at once); 0: interval_ms throughout.
  int steady_interval_ms = 0;
  int timeout_ms = 1000;
  int success_threshold = 1;  // consecutive successes to become ready/healthy
  int failure_threshold = 3;  // consecutive failures to become unready/unhealthy
  int initial_delay_ms = 0;
};

struct ChecksSpec {
  ProbeSpec readiness;       // gates traffic
  ProbeSpec liveness;        // restarts the instance when it fails
  int startup_grace_ms = 0;  // liveness is not applied before this
};

// When the docker runtime pulls run.image (configuration.md, run.pull).
enum class PullPolicy { kMissing, kAlways, kNever };
inline const char* pull_policy_name(PullPolicy p) {
  return p == PullPolicy::kAlways ? "always" : p == PullPolicy::kNever ? "never" : "missing";
}

struct RunSpec {
  std::vector<std::string> command;  // process runtime; "${PORT}" and "${VERSION}" expanded
  std::string image;                 // docker runtime (when set, command is the container args)
  PullPolicy pull = PullPolicy::kMissing;  // docker runtime only
  double cpus = 0;                         // docker runtime only: CPU limit (0 = none)
  int64_t memory_bytes = 0;                // docker runtime only: memory limit (0 = none)
  std::string cwd;  // "" = the instance's own directory (see agent/process.h)
  std::map<std::string, std::string> env;
  int stop_grace_ms = 10'000;  // SIGTERM → this long → SIGKILL
  // The user instances and hooks run as ("" = the agent's, or ferry-app when it is root).
  std::string user;
  // Loader variables (is_loader_env) a release may set with --set-env; others are refused.
  std::vector<std::string> allow_loader_env;
};

// An environment variable name as configuration.md allows: [A-Za-z_][A-Za-z0-9_]*, at
// most 128 characters.
bool valid_env_name(std::string_view name);
// Variables that make a program load or run other code than its own (the dynamic
// loader's LD_*, GCONV_PATH, GLIBC_TUNABLES, MALLOC_*, …, and shell/interpreter start-up
// hooks such as BASH_ENV and NODE_OPTIONS): a release may set them only when the app's
// run.allow_loader_env names them.
bool is_loader_env(std::string_view name);
// Names ferry sets itself on every instance (PORT, FERRY_*): a release may not set them.
bool is_reserved_env(std::string_view name);

struct CanaryStep {
  enum class Kind { kWeight, kPause, kAnalysis };
  Kind kind = Kind::kWeight;
  int weight = 0;    // kWeight: percent of traffic to the new release (0-100)
  int pause_ms = 0;  // kPause: 0 with until_promote means wait for `ferry promote`
  bool until_promote = false;
  int analysis_ms = 0;  // kAnalysis: how long to watch before deciding (0: analysis.window)
};

struct StrategySpec {
  enum class Kind { kImmediate, kRolling, kBlueGreen, kCanary };
  Kind kind = Kind::kRolling;
  // rolling
  int batch_size = 1;
  int max_unavailable = 0;
  // blue-green
  int keep_old_ms = 10 * 60'000;  // old set kept this long after the switch
  bool auto_promote = true;       // switch without `ferry promote` once verified
  // canary
  std::vector<CanaryStep> steps;
};

struct LatencyRule {
  std::string metric;    // "p50", "p95", "p99"
  double max_ms = 0;     // absolute bound, 0 = none
  double max_ratio = 0;  // bound as canary/stable, 0 = none
};

struct PromQuerySpec {
  std::string name;
  std::string url;            // Prometheus base URL, e.g. http://127.0.0.1:9090
  std::string query;          // may use {{app}}, {{release}}, {{env}}
  std::optional<double> max;  // fail when the result is above
  std::optional<double> min;  // fail when the result is below
};

// The continuous sequential test of the canary's errors against stable's
// (analysis/sequential.h), beside the fixed-interval checks.
struct SequentialSpec {
  bool enabled = true;
  int interval_ms = 100;  // evaluated this often (from the router's counters)
  double alpha = 1e-3;    // bound on the chance a canary as good as stable is stopped
  double ratio = 20;      // the error-rate ratio (canary / stable) the test looks for
};

struct AnalysisSpec {
  int interval_ms = 1000;        // how often the analysis is evaluated during a step
  int window_ms = 30'000;        // default analysis step length
  int64_t min_requests = 20;     // fewer: inconclusive
  double max_error_rate = 0.05;  // 5xx + failed connections / requests
  std::vector<LatencyRule> latency;
  bool mann_whitney = true;  // canary slower than stable with this confidence fails
  double confidence = 0.98;
  std::vector<PromQuerySpec> prometheus;
  int max_inconclusive = 3;  // after this many inconclusive results in a row: fail
  SequentialSpec sequential;
  // Each host judged on its own too (engine/host_verdict.h, failing_host): a host whose
  // share of the new release fails max_error_rate and is much worse than the other hosts
  // fails the step even when the sum over all hosts passes. false: it is only named.
  bool per_host = true;
};

struct HookSpec {
  std::string name;
  std::vector<std::string> command;
  int timeout_ms = 60'000;
  int retries = 0;                               // 0-3, only for transient failures
  std::vector<int> transient_exit_codes = {75};  // EX_TEMPFAIL by default
  std::map<std::string, std::string> env;
};

struct HooksSpec {
  std::vector<HookSpec> pre_deploy;   // backups, migrations
  std::vector<HookSpec> post_deploy;  // smoke tests
  std::vector<HookSpec> on_rollback;
};

struct WindowSpec {
  std::vector<int> days;  // 0 = Sunday … 6 = Saturday
  int start_minute = 0;   // minutes after local midnight
  int end_minute = 24 * 60;
  std::string timezone = "UTC";
};

struct FreezeSpec {
  std::string from;  // ISO date or date-time, inclusive
  std::string to;    // inclusive
  std::string timezone = "UTC";
  std::string reason;
};

struct EnvironmentSpec {
  std::string name;
  std::vector<std::string> requires_envs;  // a release must have succeeded there first
  std::vector<std::string> agents;         // agent names (see AgentSpec)
  int approvals = 0;                       // approvals needed, never by the requester
  int approval_ttl_ms = 24 * 3600'000;
  bool auto_deploy = false;         // new releases go here without a request
  std::vector<WindowSpec> windows;  // empty: any time
  std::vector<FreezeSpec> freezes;
  // The secret-scan gate: "required", "optional", or "" for the default (required where
  // approvals are needed or the environment is not the first in promotion order).
  std::string scan;
  // Partitions (docs/configuration.md): an agent that has not answered for agent_timeout_ms
  // during a deployment is lost, and on_agent_loss decides: "pause" (the default),
  // "rollback", or "continue" without it while at least min_available agents answer.
  int agent_timeout_ms = 30'000;
  std::string on_agent_loss = "pause";
  int min_available = 1;
  // Placement (core/placement.h): an app's `instances` is this environment's total, spread
  // over its agents, at most max_per_agent on one (0: no limit), and evenly over the values
  // of the agents' `spread_by` label first ("": none).
  int max_per_agent = 0;
  std::string spread_by;
  SloGateSpec slo_gate;  // docs/slo.md: the release gate on the error budget
  // Game days (`ferry chaos`, docs/runbook.md): `chaos: allowed`; refused by default.
  bool chaos_allowed = false;
};

// Per-environment overrides of an app.
struct AppEnvSpec {
  std::optional<int> instances;
  std::optional<uint16_t> port;
  std::map<std::string, std::string> env;
  std::optional<SloSpec> slo;  // replaces the app's `slo` in this environment
};

// One certificate the router serves: PEM files on the agent's host (absolute paths). The
// host names it answers for by SNI are the certificate's own (subjectAltName DNS names).
struct TlsCertSpec {
  std::string cert_file;  // the certificate, then its intermediates
  std::string key_file;
  bool operator==(const TlsCertSpec&) const = default;
};

// apps.<name>.tls.acme: certificates from an ACME CA (RFC 8555) over HTTP-01, kept and
// renewed by the agent (docs/operations.md, "Certificates").
struct AcmeSpec {
  std::vector<std::string> hosts;  // DNS names (lower case) the certificate names; empty: off
  std::string email;               // the account's contact ("": none)
  std::string directory = "https://acme-v02.api.letsencrypt.org/directory";
  std::string ca_bundle_file;  // checks the directory's certificate ("": the system's store)

  bool enabled() const { return !hosts.empty(); }
  bool operator==(const AcmeSpec&) const = default;
};

// apps.<name>.tls: TLS termination on the app's port (docs/router.md, "TLS").
struct TlsSpec {
  std::vector<TlsCertSpec> certificates;  // empty: plain HTTP; the first serves clients without SNI
  std::string min_version = "1.2";        // "1.2" or "1.3"
  std::string client_ca_file;             // "": no client certificate asked for
  uint16_t http_port = 0;                 // a plain HTTP port beside the TLS one (0: none)
  bool redirect = false;                  // http_port answers 308 to https instead of proxying
  int64_t hsts_max_age_s = 0;             // Strict-Transport-Security max-age; 0: not sent
  bool hsts_include_subdomains = false;
  // HTTP/2 offered by ALPN ("h2" before "http/1.1") on the TLS port, and how many streams
  // one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
  bool http2 = true;
  int http2_max_streams = 100;
  // Instead of certificate files: the agent obtains and renews them over ACME and fills
  // `certificates` with the file it keeps them in before the router loads them.
  AcmeSpec acme;

  bool enabled() const { return !certificates.empty() || acme.enabled(); }
  bool operator==(const TlsSpec&) const = default;
};

// apps.<name>.access_log: one JSON line per request (docs/router.md, "Access log").
struct AccessLogSpec {
  std::string path;               // "": off (the default); absolute path on the agent's host
  int64_t max_bytes = 100 << 20;  // the file is rotated (path.1, path.2, …) past this size
  int keep = 5;                   // rotated files kept
  bool operator==(const AccessLogSpec&) const = default;
};

// apps.<name>.router: who the router trusts and how it protects users (docs/router.md).
struct RouterSpec {
  std::vector<std::string> trusted_proxies;  // CIDRs whose X-Forwarded-For and
                                             // x-ferry-idempotent are believed; default none
  std::vector<std::string> pin_from;         // CIDRs that may pin a release by name
  bool pin_tokens = false;                   // signed, expiring pin tokens accepted (pin-token)
  bool shield = true;                        // idempotent requests a canary fails go to stable
  std::string affinity = "none";             // "none", "cookie" or "header:NAME"
  int request_body_timeout_ms = 60'000;      // total time a request body may take
  TlsSpec tls;                               // from apps.<name>.tls
  AccessLogSpec access_log;                  // from apps.<name>.access_log
  // Paths whose requests the router leaves out of its SLO counters (ReleaseStats::slo_*):
  // the app's `slo.availability.exclude_paths` in the environment (core/slo_paths.h).
  std::vector<std::string> slo_exclude_paths;

  bool pinning() const { return pin_tokens || !pin_from.empty(); }
};

struct AppSpec {
  std::string name;
  uint16_t port = 0;                 // the router's public port for the app
  std::string listen = "127.0.0.1";  // the router's bind address (see Config::listen_for)
  bool listen_set = false;           // `listen` was written in ferry.yaml
  int instances = 1;
  RunSpec run;
  ChecksSpec checks;
  StrategySpec strategy;
  AnalysisSpec analysis;
  HooksSpec hooks;
  RouterSpec router;
  int progress_deadline_ms = 60'000;  // new instances must be ready within this
  int keep_releases = 10;
  // After a deployment succeeds, the previous stable release's instances keep running at
  // weight 0 this long, so a rollback needs no start (0: stopped at once).
  int keep_previous_ms = 0;
  std::string rollback_policy = "rollback";  // on server restart mid-step: "resume" or "rollback"
  std::map<std::string, AppEnvSpec> environments;
  std::optional<SloSpec> slo;  // docs/slo.md; none: no objectives kept
};

struct AgentSpec {
  std::string name;
  std::string address;  // host:port of its API
  std::string token_file;
  // The address the routers of this host bind ("": see Config::listen_for).
  std::string listen;
  std::map<std::string, std::string> labels;  // e.g. zone: eu-1a (placement's spread_by)
  // How the server calls it (docs/operations.md, "Mutual TLS"): `tls` requires mutual TLS
  // (the agent enrolled); `insecure` allows plain HTTP to a non-loopback address.
  bool tls = false;
  bool insecure = false;
};

// "127.0.0.1:7071", "localhost:7071", "[::1]:7071" or a Unix socket: this host.
bool loopback_address(std::string_view address);

struct NotificationSpec {
  std::string name;
  std::string type;     // slack, pagerduty, webhook
  std::string url;      // or a secret reference
  std::string url_env;  // read the URL from this environment variable (keeps it out of the file)
  std::string routing_key_env;      // pagerduty
  std::string secret_env;           // webhook HMAC key
  std::vector<std::string> events;  // empty: all
};

// ferry.yaml `server.backups:`: scheduled backups of the store (docs/operations.md).
struct BackupSpec {
  int every_ms = 0;   // 0: none scheduled (`ferry backup create` still works)
  int keep = 28;      // newest backups kept; older ones are removed after each backup
  std::string dir;    // "" = <data_dir>/backups
  bool drill = true;  // restore-test each scheduled backup in a temporary folder
};

struct ServerSpec {
  std::string listen = "127.0.0.1:7070";
  std::string store = "sqlite:.ferry/ferry.db";  // or postgres://…
  std::string data_dir = ".ferry";
  std::string secrets_key_file;  // 32-byte key for secrets at rest
  // Fingerprints the release scan gate ignores (one per line). Never read from the
  // release's own tree: a deployer could ignore their own findings.
  std::string scan_ignore_file;
  // 32-byte key of the audit chain's HMAC ("" = <data_dir>/audit.key, made on first start).
  std::string audit_key_file;
  bool start_local_agent = true;
  BackupSpec backups;
  // Several servers on one PostgreSQL store (docs/operations.md, "High availability"):
  // the leader lease's length, and the address other servers forward writes to ("" =
  // the address the API is bound to).
  int lease_ms = 3000;
  std::string advertise;
};

// ferry.yaml `agent:`: the local agent's settings (remote agents take the same as flags of
// `ferry agent`).
struct LocalAgentSpec {
  std::string instance_ports = "20000-29999";  // outside the kernel's ephemeral range
  int log_keep = 5;                  // rotated files per instance, gone instances' logs per app
  int64_t log_max_bytes = 10 << 20;  // an instance log past this is rotated
};

struct Config {
  std::string path;  // the file it came from
  ServerSpec server;
  LocalAgentSpec local_agent;  // ferry.yaml `agent:`
  std::vector<AgentSpec> agents;
  std::vector<EnvironmentSpec> environments;  // in file order (promotion order)
  std::vector<AppSpec> apps;
  std::vector<NotificationSpec> notifications;

  const AppSpec* app(std::string_view name) const;
  const EnvironmentSpec* environment(std::string_view name) const;
  const AgentSpec* agent(std::string_view name) const;
  // The app as deployed to `env`: per-environment overrides applied.
  AppSpec app_for_env(const AppSpec& app, std::string_view env) const;
  // The address the app's router binds on agent `agent`: agents.NAME.listen, else the app's
  // `listen` when written, else 0.0.0.0 on a remote agent (declared under `agents:` with a
  // non-loopback address) and the app's default (127.0.0.1) on a local one.
  std::string listen_for(const AppSpec& app, std::string_view agent) const;
  // Whether a release must have a clean (or admin-overridden) secret scan to be deployed
  // to `env`: its `scan` setting, else required when it needs approvals or is not the
  // first environment in promotion order. Unknown environments: required.
  bool scan_required(std::string_view env) const;
};

}  // namespace ferry
