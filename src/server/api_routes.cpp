// The API's plumbing: auth middleware, denial auditing, JSON shapes, health routes.
#include <sstream>

#include "server/control_plane.h"

namespace ferry {

Principal principal_of(const HttpRequest& req) {
  Principal p;
  auto get = [&](const char* k) {
    auto it = req.attrs.find(k);
    return it == req.attrs.end() ? std::string() : it->second;
  };
  p.token_id = get("token_id");
  p.name = get("actor");
  p.role = parse_role(get("role")).ok() ? *parse_role(get("role")) : Role::kViewer;
  std::stringstream envs(get("envs"));
  for (std::string e; std::getline(envs, e, ',');)
    if (!e.empty()) p.envs.push_back(e);
  return p;
}

std::optional<HttpResponse> require(const HttpRequest& req, Role need, const std::string& env) {
  // No principal means the auth middleware did not run for this path: refuse, never default.
  if (!req.attrs.count("role"))
    return HttpResponse::error(unauthenticated("an API token is required"));
  Status s = principal_of(req).allow(need, env);
  if (s.ok()) return std::nullopt;
  return HttpResponse::error(s);
}

std::optional<int64_t> DenialLimiter::record(const std::string& key,
                                             std::chrono::steady_clock::time_point now) {
  std::lock_guard lk(mu_);
  if (windows_.size() >= kMaxKeys && !windows_.count(key))
    std::erase_if(windows_, [&](const auto& kv) {
      return now - kv.second.audited_at >= std::chrono::minutes(1);
    });
  auto [it, fresh] = windows_.try_emplace(key);
  Window& w = it->second;
  ++w.pending;
  if (!fresh && now - w.audited_at < std::chrono::minutes(1)) return std::nullopt;
  w.audited_at = now;
  const int64_t n = w.pending;
  w.pending = 0;
  return n;
}

bool env_visible(const HttpRequest& req, const std::string& env) {
  return env.empty() || scope_allows(principal_of(req).envs, env);
}

Result<Json> object_body(const HttpRequest& req, bool empty_ok) {
  if (req.body.empty() && empty_ok) return Json::object();
  auto body = parse_json(req.body);
  if (!body.ok()) return body.status();
  if (!body->is_object())
    return invalid_argument(
        std::string("request body must be a JSON object {...}, not ") +
        (body->is_array() ? "an array" : "a " + std::string(body->type_name())));
  return body;
}

Result<std::string> string_field(const Json& body, const char* name, bool required,
                                 size_t max_bytes) {
  if (!body.contains(name) || body[name].is_null()) {
    if (required) return invalid_argument(std::string("field '") + name + "' is required");
    return std::string();
  }
  if (!body[name].is_string())
    return invalid_argument(std::string("field '") + name + "' must be a string");
  std::string v = body[name].get<std::string>();
  if (v.size() > max_bytes)
    return invalid_argument(std::string("field '") + name + "' is longer than " +
                            std::to_string(max_bytes) + " characters");
  return v;
}

Json event_json(const DeploymentEvent& e) {
  return Json{{"seq", e.seq},         {"deployment_id", e.deployment_id},
              {"time_ms", e.time_ms}, {"type", std::string(to_string(e.type))},
              {"step", e.step},       {"message", e.message},
              {"data", e.data}};
}

Json deployment_json(const DeploymentRecord& d) {
  return Json{{"id", d.id},
              {"app", d.app},
              {"env", d.env},
              {"release", d.release},
              {"previous_release", d.previous_release},
              {"state", std::string(to_string(d.state))},
              {"strategy", d.strategy},
              {"plan", d.plan},
              {"current_step", d.current_step},
              {"step_state", d.step_state},
              {"reason", d.reason},
              {"requested_by", d.requested_by},
              {"created_at_ms", d.created_at_ms},
              {"updated_at_ms", d.updated_at_ms},
              {"finished_at_ms", d.finished_at_ms}};
}

void add_health_routes(HttpServer& http, ControlPlane& cp) {
  // Prometheus scrapes with a viewer token (authorization.credentials_file).
  http.route("GET", "/metrics", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    return HttpResponse::text(cp.metrics().expose(), std::string(metrics::Registry::kContentType));
  });
  // Which server leads (several servers on one PostgreSQL store).
  http.route("GET", "/api/v1/leader", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    const LeaderElector* l = cp.leader();
    if (!l)
      return HttpResponse::json(
          Json{{"ha", false}, {"leader", true}, {"holder", ""}, {"lease", nullptr}});
    const LeaderLease seen = l->last_seen();
    return HttpResponse::json(Json{{"ha", true},
                                   {"leader", l->is_leader()},
                                   {"holder", l->holder()},
                                   {"token", l->token()},
                                   {"lease",
                                    {{"holder", seen.holder},
                                     {"address", seen.address},
                                     {"token", seen.token},
                                     {"remaining_ms", seen.remaining_ms}}}});
  });
  http.route("GET", "/health/live", [](HttpRequest&) {
    return HttpResponse::json({{"ok", true}});
  });
  // Without a token: ready or not, nothing else (agent addresses and errors describe the
  // network behind the server). With a valid token: every check and its error.
  http.route("GET", "/health/ready", [&cp](HttpRequest& req) {
    const std::string auth = req.header("authorization");
    const bool detailed =
        !auth.empty() && cp.auth().authenticate(auth, to_unix_ms(cp.clock().now())).ok();
    Json checks = Json::object();
    bool ok = true;
    // The store's last error (damage found at start or since), then a live read.
    Status h = cp.store().health();
    auto v = cp.store().schema_version();
    if (!h.ok())
      checks["store"] =
          h.message() + "; new deployments are stopped; " + cp.store().restore_steps();
    else
      checks["store"] = v.ok() ? "ok" : v.status().message();
    ok &= h.ok() && v.ok();
    // A standby is ready: it serves reads and forwards writes to the leader.
    if (const LeaderElector* l = cp.leader()) {
      const LeaderLease seen = l->last_seen();
      checks["leader"] =
          l->is_leader()        ? "this server leads (token " + std::to_string(l->token()) + ")"
          : seen.holder.empty() ? std::string("standby; no leader seen yet")
                                : "standby; the leader is " + seen.holder + " at " + seen.address;
    }
    auto config = cp.config();
    for (const auto& env : config->environments)
      for (AgentClient* a : cp.agents_for(env.name)) {
        Status s = a->health();
        checks["agent " + a->name() + " (" + a->address() + ")"] = s.ok() ? "ok" : s.message();
        ok &= s.ok();
      }
    if (!detailed) return HttpResponse::json(Json{{"ok", ok}}, ok ? 200 : 503);
    return HttpResponse::json(Json{{"ok", ok}, {"checks", checks}}, ok ? 200 : 503);
  });
}

void ControlPlane::add_routes() {
  HttpServer& http = *http_;
  // Every /api call needs a token; /health does not (load balancers, systemd).
  http.use([this](HttpRequest& req) -> std::optional<HttpResponse> {
    if (!req.path.starts_with("/api/") && req.path != "/metrics") return std::nullopt;
    std::string token = req.header("authorization");
    // EventSource cannot set headers: the stream also takes ?token=.
    if (token.empty() && req.path == "/api/v1/events/stream")
      token = req.query_value("token").value_or("");
    auto p = auth_->authenticate(token, to_unix_ms(clock_.now()));
    if (!p.ok()) return HttpResponse::error(p.status());
    req.attrs["actor"] = p->name;
    req.attrs["token_id"] = p->token_id;
    req.attrs["role"] = std::string(role_name(p->role));
    std::string envs;
    for (const auto& e : p->envs) envs += (envs.empty() ? "" : ",") + e;
    req.attrs["envs"] = envs;
    return std::nullopt;
  });
  // A standby serves reads from the shared store and forwards everything else to the
  // leader (docs/api.md, "Several servers"): the engine runs only there.
  http.use([this](HttpRequest& req) -> std::optional<HttpResponse> {
    if (!req.path.starts_with("/api/") || req.method == "GET" || req.method == "HEAD")
      return std::nullopt;
    if (is_leader()) return std::nullopt;
    return forward_to_leader(req);
  });
  // Denials are audited: who tried what, from where.
  http.observe([this](const HttpRequest& req, const HttpResponse& res, double ms) {
    metrics_->on_request(res.status);
    // Denials of authenticated callers are audited; failed logins are logged (auditing
    // them would let anyone without a token grow the audit log).
    if (res.status == 401)
      log_->warn(
          "unauthenticated request",
          {{"method", req.method}, {"path", req.path.substr(0, 200)}, {"remote", req.remote_addr}});
    if (res.status == 403) {
      auto actor = req.attrs.count("actor") ? req.attrs.at("actor") : std::string("anonymous");
      const std::string token = req.attrs.count("token_id") ? req.attrs.at("token_id") : "";
      if (auto count = denials_.record(token + " " + req.method + " " + req.path.substr(0, 200),
                                       std::chrono::steady_clock::now()))
        audit(actor, "api.denied", "", "", "", req.remote_addr,
              Json{{"method", req.method},
                   {"path", req.path.substr(0, 200)},
                   {"status", res.status},
                   {"count", *count}});
    }
    if (auto it = req.attrs.find("internal_error"); it != req.attrs.end())
      log_->error("request handler failed", {{"method", req.method},
                                             {"path", req.path.substr(0, 200)},
                                             {"request_id", req.request_id},
                                             {"error", masker_->mask(it->second)}});
    // Access log: changes and errors at info, reads at debug.
    const LogLevel level =
        (req.method != "GET" || res.status >= 400) ? LogLevel::kInfo : LogLevel::kDebug;
    if (log_->enabled(level))
      log_->log(level, "request",
                {{"method", req.method},
                 {"path", req.path},
                 {"status", res.status},
                 {"latency_ms", ms},
                 {"request_id", req.request_id},
                 {"actor", req.attrs.count("actor") ? req.attrs.at("actor") : ""},
                 {"remote", req.remote_addr}});
  });
  add_health_routes(http, *this);
  add_deployment_routes(http, *this);
  add_release_routes(http, *this);
  add_admin_routes(http, *this);
  add_enroll_routes(http, *this);
  add_governance_routes(http, *this);
  add_slo_routes(http, *this);
  add_chaos_routes(http, *this);
  add_dashboard_routes(http, *this);
}

}  // namespace ferry
