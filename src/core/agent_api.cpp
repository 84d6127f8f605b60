#include "core/agent_api.h"

namespace ferry {

std::string agent_app_name(const std::string& app, const std::string& env) { return app + "." + env; }


std::string_view to_string(InstanceState s) {
  switch (s) {
    case InstanceState::kStarting: return "starting";
    case InstanceState::kReady: return "ready";
    case InstanceState::kUnready: return "unready";
    case InstanceState::kCrashed: return "crashed";
    case InstanceState::kStopping: return "stopping";
    case InstanceState::kStopped: return "stopped";
  }
  return "starting";
}

InstanceState instance_state_from_string(std::string_view s) {
  if (s == "ready") return InstanceState::kReady;
  if (s == "unready") return InstanceState::kUnready;
  if (s == "crashed") return InstanceState::kCrashed;
  if (s == "stopping") return InstanceState::kStopping;
  if (s == "stopped") return InstanceState::kStopped;
  return InstanceState::kStarting;
}

const std::vector<double>& latency_buckets_ms() {
  static const std::vector<double> kBuckets = {1,   2,   5,    10,   25,   50,    75,   100,
                                               150, 250, 500,  750,  1000, 2500, 5000, 10000};
  return kBuckets;
}

static std::string_view probe_kind(ProbeSpec::Kind k) {
  switch (k) {
    case ProbeSpec::Kind::kHttp: return "http";
    case ProbeSpec::Kind::kTcp: return "tcp";
    case ProbeSpec::Kind::kCommand: return "command";
    case ProbeSpec::Kind::kNone: break;
  }
  return "none";
}

void to_json(Json& j, const ProbeSpec& p) {
  j = Json{{"kind", probe_kind(p.kind)},
           {"path", p.path},
           {"expect_status", p.expect_status},
           {"command", p.command},
           {"interval_ms", p.interval_ms},
           {"timeout_ms", p.timeout_ms},
           {"success_threshold", p.success_threshold},
           {"failure_threshold", p.failure_threshold},
           {"initial_delay_ms", p.initial_delay_ms}};
  // Only when set: a spec without it serialises (and compares) as before.
  if (p.steady_interval_ms > 0) j["steady_interval_ms"] = p.steady_interval_ms;
}

void from_json(const Json& j, ProbeSpec& p) {
  const std::string k = j.value("kind", "none");
  p.kind = k == "http"      ? ProbeSpec::Kind::kHttp
           : k == "tcp"     ? ProbeSpec::Kind::kTcp
           : k == "command" ? ProbeSpec::Kind::kCommand
                            : ProbeSpec::Kind::kNone;
  p.path = j.value("path", "/");
  p.expect_status = j.value("expect_status", 200);
  p.command = j.value("command", std::vector<std::string>{});
  p.interval_ms = j.value("interval_ms", 1000);
  p.timeout_ms = j.value("timeout_ms", 1000);
  p.steady_interval_ms = j.value("steady_interval_ms", 0);
  p.success_threshold = j.value("success_threshold", 1);
  p.failure_threshold = j.value("failure_threshold", 3);
  p.initial_delay_ms = j.value("initial_delay_ms", 0);
}

void to_json(Json& j, const ChecksSpec& c) {
  j = Json{{"readiness", c.readiness},
           {"liveness", c.liveness},
           {"startup_grace_ms", c.startup_grace_ms}};
}

void from_json(const Json& j, ChecksSpec& c) {
  if (j.contains("readiness")) c.readiness = j["readiness"].get<ProbeSpec>();
  if (j.contains("liveness")) c.liveness = j["liveness"].get<ProbeSpec>();
  c.startup_grace_ms = j.value("startup_grace_ms", 0);
}

void to_json(Json& j, const RunSpec& r) {
  j = Json{{"command", r.command},
           {"image", r.image},
           {"cwd", r.cwd},
           {"env", r.env},
           {"stop_grace_ms", r.stop_grace_ms}};
  if (!r.user.empty()) j["user"] = r.user;
  if (!r.image.empty()) {
    j["pull"] = pull_policy_name(r.pull);
    if (r.cpus > 0) j["cpus"] = r.cpus;
    if (r.memory_bytes > 0) j["memory_bytes"] = r.memory_bytes;
  }
}

void from_json(const Json& j, RunSpec& r) {
  r.command = j.value("command", std::vector<std::string>{});
  r.image = j.value("image", "");
  r.cwd = j.value("cwd", "");
  r.env = j.value("env", std::map<std::string, std::string>{});
  r.stop_grace_ms = j.value("stop_grace_ms", 10'000);
  r.user = j.value("user", "");
  const std::string pull = j.value("pull", "missing");
  r.pull = pull == "always"  ? PullPolicy::kAlways
           : pull == "never" ? PullPolicy::kNever
                             : PullPolicy::kMissing;
  r.cpus = j.value("cpus", 0.0);
  r.memory_bytes = j.value("memory_bytes", int64_t{0});
}

void to_json(Json& j, const InstanceSpec& s) {
  j = Json{{"id", s.id}, {"release", s.release}, {"run", s.run}, {"checks", s.checks},
           {"port", s.port}};
}

void from_json(const Json& j, InstanceSpec& s) {
  s.id = j.at("id").get<std::string>();
  s.release = j.value("release", "");
  if (j.contains("run")) s.run = j["run"].get<RunSpec>();
  if (j.contains("checks")) s.checks = j["checks"].get<ChecksSpec>();
  s.port = j.value("port", uint16_t{0});
}

void to_json(Json& j, const AppDesiredState& s) {
  j = Json{{"app", s.app},
           {"app_name", s.app_name},
           {"env", s.env},
           {"generation", s.generation},
           {"listen_host", s.listen_host},
           {"listen_port", s.listen_port},
           {"weights", s.weights},
           {"instances", s.instances},
           {"stable", s.stable_release},
           {"router", s.router}};
}

void from_json(const Json& j, AppDesiredState& s) {
  s.app = j.at("app").get<std::string>();
  s.app_name = j.value("app_name", "");
  s.env = j.value("env", "");
  s.generation = j.value("generation", int64_t{0});
  s.listen_host = j.value("listen_host", "127.0.0.1");
  s.listen_port = j.value("listen_port", uint16_t{0});
  s.weights = j.value("weights", std::map<std::string, int>{});
  s.instances = j.value("instances", std::vector<InstanceSpec>{});
  s.stable_release = j.value("stable", "");
  // A server that predates router settings sends none: the defaults apply.
  s.router = j.value("router", RouterSpec{});
}

void to_json(Json& j, const RouterSpec& r) {
  j = Json{{"trusted_proxies", r.trusted_proxies},
           {"pin_from", r.pin_from},
           {"pin_tokens", r.pin_tokens},
           {"shield", r.shield},
           {"affinity", r.affinity},
           {"request_body_timeout_ms", r.request_body_timeout_ms}};
  if (r.tls.enabled()) {
    Json certs = Json::array();
    for (const auto& c : r.tls.certificates)
      certs.push_back(Json{{"cert_file", c.cert_file}, {"key_file", c.key_file}});
    j["tls"] = Json{{"certificates", certs},
                    {"min_version", r.tls.min_version},
                    {"client_ca_file", r.tls.client_ca_file},
                    {"http_port", r.tls.http_port},
                    {"redirect", r.tls.redirect},
                    {"hsts_max_age_s", r.tls.hsts_max_age_s},
                    {"hsts_include_subdomains", r.tls.hsts_include_subdomains},
                    {"http2", r.tls.http2},
                    {"http2_max_streams", r.tls.http2_max_streams}};
    if (r.tls.acme.enabled())
      j["tls"]["acme"] = Json{{"hosts", r.tls.acme.hosts},
                              {"email", r.tls.acme.email},
                              {"directory", r.tls.acme.directory},
                              {"ca_bundle_file", r.tls.acme.ca_bundle_file}};
  }
  if (!r.slo_exclude_paths.empty()) j["slo_exclude_paths"] = r.slo_exclude_paths;
  if (!r.access_log.path.empty())
    j["access_log"] = Json{{"path", r.access_log.path},
                           {"max_bytes", r.access_log.max_bytes},
                           {"keep", r.access_log.keep}};
}

void from_json(const Json& j, RouterSpec& r) {
  const RouterSpec d;
  r.trusted_proxies = j.value("trusted_proxies", d.trusted_proxies);
  r.pin_from = j.value("pin_from", d.pin_from);
  r.pin_tokens = j.value("pin_tokens", d.pin_tokens);
  r.shield = j.value("shield", d.shield);
  r.affinity = j.value("affinity", d.affinity);
  r.request_body_timeout_ms = j.value("request_body_timeout_ms", d.request_body_timeout_ms);
  r.slo_exclude_paths = j.value("slo_exclude_paths", d.slo_exclude_paths);
  if (auto t = j.find("tls"); t != j.end() && t->is_object()) {
    for (const auto& c : t->value("certificates", Json::array()))
      r.tls.certificates.push_back({c.value("cert_file", ""), c.value("key_file", "")});
    r.tls.min_version = t->value("min_version", d.tls.min_version);
    r.tls.client_ca_file = t->value("client_ca_file", "");
    r.tls.http_port = t->value("http_port", uint16_t{0});
    r.tls.redirect = t->value("redirect", false);
    r.tls.hsts_max_age_s = t->value("hsts_max_age_s", int64_t{0});
    r.tls.hsts_include_subdomains = t->value("hsts_include_subdomains", false);
    r.tls.http2 = t->value("http2", d.tls.http2);
    r.tls.http2_max_streams = t->value("http2_max_streams", d.tls.http2_max_streams);
    if (auto a = t->find("acme"); a != t->end() && a->is_object()) {
      r.tls.acme.hosts = a->value("hosts", std::vector<std::string>{});
      r.tls.acme.email = a->value("email", "");
      r.tls.acme.directory = a->value("directory", d.tls.acme.directory);
      r.tls.acme.ca_bundle_file = a->value("ca_bundle_file", "");
    }
  }
  if (auto a = j.find("access_log"); a != j.end() && a->is_object()) {
    r.access_log.path = a->value("path", "");
    r.access_log.max_bytes = a->value("max_bytes", d.access_log.max_bytes);
    r.access_log.keep = a->value("keep", d.access_log.keep);
  }
}

void to_json(Json& j, const InstanceStatus& s) {
  j = Json{{"id", s.id},
           {"release", s.release},
           {"state", to_string(s.state)},
           {"pid", s.pid},
           {"port", s.port},
           {"restarts", s.restarts},
           {"last_exit_code", s.last_exit_code},
           {"started_at_ms", s.started_at_ms},
           {"ready_at_ms", s.ready_at_ms},
           {"message", s.message}};
}

void from_json(const Json& j, InstanceStatus& s) {
  s.id = j.value("id", "");
  s.release = j.value("release", "");
  s.state = instance_state_from_string(j.value("state", "starting"));
  s.pid = j.value("pid", 0);
  s.port = j.value("port", uint16_t{0});
  s.restarts = j.value("restarts", 0);
  s.last_exit_code = j.value("last_exit_code", 0);
  s.started_at_ms = j.value("started_at_ms", int64_t{0});
  s.ready_at_ms = j.value("ready_at_ms", int64_t{0});
  s.message = j.value("message", "");
}

void to_json(Json& j, const ReleaseStats& s) {
  j = Json{{"release", s.release},
           {"requests", s.requests},
           {"status_1xx", s.status_1xx},
           {"status_2xx", s.status_2xx},
           {"status_3xx", s.status_3xx},
           {"status_4xx", s.status_4xx},
           {"status_5xx", s.status_5xx},
           {"upstream_errors", s.upstream_errors},
           {"latency_counts", s.latency_counts},
           {"latency_sum_ms", s.latency_sum_ms},
           {"recent_latencies_ms", s.recent_latencies_ms},
           {"sample_seq", s.sample_seq},
           {"active_requests", s.active_requests},
           {"shielded", s.shielded},
           {"pinned_requests", s.pinned_requests},
           {"pinned_5xx", s.pinned_5xx},
           {"slo_requests", s.slo_requests},
           {"slo_5xx", s.slo_5xx}};
}

void from_json(const Json& j, ReleaseStats& s) {
  s.release = j.value("release", "");
  s.requests = j.value("requests", uint64_t{0});
  s.status_1xx = j.value("status_1xx", uint64_t{0});
  s.status_2xx = j.value("status_2xx", uint64_t{0});
  s.status_3xx = j.value("status_3xx", uint64_t{0});
  s.status_4xx = j.value("status_4xx", uint64_t{0});
  s.status_5xx = j.value("status_5xx", uint64_t{0});
  s.upstream_errors = j.value("upstream_errors", uint64_t{0});
  s.latency_counts = j.value("latency_counts", std::vector<uint64_t>{});
  s.latency_sum_ms = j.value("latency_sum_ms", 0.0);
  s.recent_latencies_ms = j.value("recent_latencies_ms", std::vector<double>{});
  s.sample_seq = j.value("sample_seq", uint64_t{0});
  s.active_requests = j.value("active_requests", 0);
  s.shielded = j.value("shielded", uint64_t{0});
  s.pinned_requests = j.value("pinned_requests", uint64_t{0});
  s.pinned_5xx = j.value("pinned_5xx", uint64_t{0});
  // An agent that predates the SLO's counter set excludes nothing: the same as all requests.
  s.slo_requests = j.value("slo_requests", s.requests);
  s.slo_5xx = j.value("slo_5xx", s.status_5xx);
}

void to_json(Json& j, const AppStatus& s) {
  j = Json{{"app", s.app},
           {"generation", s.generation},
           {"applied_generation", s.applied_generation},
           {"weights", s.weights},
           {"instances", s.instances},
           {"releases", s.releases}};
  const EdgeStatus& e = s.edge;
  if (e != EdgeStatus{})
    j["edge"] = Json{{"tls", e.tls},
                     {"access_log", e.access_log},
                     {"tls_reloads", e.tls_reloads},
                     {"tls_reload_failures", e.tls_reload_failures},
                     {"tls_error", e.tls_error},
                     {"access_log_written", e.access_log_written},
                     {"access_log_dropped", e.access_log_dropped},
                     {"router_error", e.router_error},
                     {"h2_abuse_rapid_reset", e.h2_abuse_rapid_reset},
                     {"h2_abuse_flood", e.h2_abuse_flood},
                     {"h2_abuse_protocol_error", e.h2_abuse_protocol_error},
                     {"acme_state", e.acme_state},
                     {"cert_not_after_ms", e.cert_not_after_ms},
                     {"acme_renew_at_ms", e.acme_renew_at_ms},
                     {"acme_next_attempt_ms", e.acme_next_attempt_ms},
                     {"acme_issued", e.acme_issued},
                     {"acme_failures", e.acme_failures},
                     {"acme_error", e.acme_error}};
}

void from_json(const Json& j, AppStatus& s) {
  s.app = j.value("app", "");
  s.generation = j.value("generation", int64_t{0});
  s.applied_generation = j.value("applied_generation", int64_t{0});
  s.weights = j.value("weights", std::map<std::string, int>{});
  s.instances = j.value("instances", std::vector<InstanceStatus>{});
  s.releases = j.value("releases", std::vector<ReleaseStats>{});
  if (auto e = j.find("edge"); e != j.end() && e->is_object()) {
    EdgeStatus& d = s.edge;
    d.tls = e->value("tls", false);
    d.access_log = e->value("access_log", false);
    d.tls_reloads = e->value("tls_reloads", uint64_t{0});
    d.tls_reload_failures = e->value("tls_reload_failures", uint64_t{0});
    d.tls_error = e->value("tls_error", "");
    d.access_log_written = e->value("access_log_written", uint64_t{0});
    d.access_log_dropped = e->value("access_log_dropped", uint64_t{0});
    d.router_error = e->value("router_error", "");
    d.h2_abuse_rapid_reset = e->value("h2_abuse_rapid_reset", uint64_t{0});
    d.h2_abuse_flood = e->value("h2_abuse_flood", uint64_t{0});
    d.h2_abuse_protocol_error = e->value("h2_abuse_protocol_error", uint64_t{0});
    d.acme_state = e->value("acme_state", "");
    d.cert_not_after_ms = e->value("cert_not_after_ms", int64_t{0});
    d.acme_renew_at_ms = e->value("acme_renew_at_ms", int64_t{0});
    d.acme_next_attempt_ms = e->value("acme_next_attempt_ms", int64_t{0});
    d.acme_issued = e->value("acme_issued", uint64_t{0});
    d.acme_failures = e->value("acme_failures", uint64_t{0});
    d.acme_error = e->value("acme_error", "");
  }
}

}  // namespace ferry
