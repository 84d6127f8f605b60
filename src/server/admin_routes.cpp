// Tokens, the audit log and whoami.
#include "server/control_plane.h"

namespace ferry {

namespace {

Json token_json(const TokenRecord& t) {
  return Json{{"id", t.id},
              {"name", t.name},
              {"role", t.role},
              {"envs", t.envs},
              {"created_by", t.created_by},
              {"created_at_ms", t.created_at_ms},
              {"expires_at_ms", t.expires_at_ms},
              {"revoked", t.revoked}};
}

Json audit_json(const AuditRecord& a) {
  return Json{{"seq", a.seq},
              {"time_ms", a.time_ms},
              {"actor", a.actor},
              {"action", a.action},
              {"app", a.app},
              {"env", a.env},
              {"release", a.release},
              {"git_sha", a.git_sha},
              {"source_addr", a.source_addr},
              {"details", a.details},
              {"prev_hash", a.prev_hash},
              {"hash", a.hash}};
}

}  // namespace

void add_admin_routes(HttpServer& http, ControlPlane& cp) {
  http.route("GET", "/api/v1/whoami", [](HttpRequest& req) {
    const Principal p = principal_of(req);
    return HttpResponse::json(
        Json{{"name", p.name}, {"role", std::string(role_name(p.role))}, {"envs", p.envs}});
  });

  http.route("POST", "/api/v1/tokens", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin)) return *denied;
    auto body = parse_json(req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    auto role = parse_role(body->value("role", ""));
    if (!role.ok()) return HttpResponse::error(role.status());
    std::vector<std::string> envs;
    try {
      envs = body->value("envs", std::vector<std::string>{});
    } catch (const std::exception&) {
      return HttpResponse::error(invalid_argument("envs must be a list of environment names"));
    }
    for (const auto& e : envs)
      if (!cp.config()->environment(e))
        return HttpResponse::error(invalid_argument("environment '" + e + "' is not configured"));
    // Absent: the token never expires. Present: a positive number of milliseconds (a
    // negative one would make a token that never expires while looking like it does).
    int64_t ttl_ms = 0;
    if (body->contains("ttl_ms") && !(*body)["ttl_ms"].is_null()) {
      const Json& t = (*body)["ttl_ms"];
      if (!t.is_number_integer() || t.get<int64_t>() <= 0 ||
          t.get<int64_t>() > int64_t{10} * 366 * 86'400'000)
        return HttpResponse::error(invalid_argument(
            "ttl_ms must be a positive whole number of milliseconds (at most 10 years); leave "
            "it out for a token that does not expire"));
      ttl_ms = t.get<int64_t>();
    }
    const std::string actor = principal_of(req).actor();
    auto t = cp.auth().create(body->value("name", ""), *role, envs, actor,
                              to_unix_ms(cp.clock().now()), ttl_ms);
    if (!t.ok()) return HttpResponse::error(t.status());
    cp.audit(actor, "token.create", "", "", "", req.remote_addr,
             Json{{"token_id", t->record.id}, {"name", t->record.name}, {"role", t->record.role}});
    Json j = token_json(t->record);
    j["token"] = t->token;
    return HttpResponse::json(j, 201);
  });

  http.route("GET", "/api/v1/tokens", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin)) return *denied;
    auto list = cp.store().list_tokens();
    if (!list.ok()) return HttpResponse::error(list.status());
    Json out = Json::array();
    for (const auto& t : *list) out.push_back(token_json(t));
    return HttpResponse::json(Json{{"tokens", out}});
  });

  http.route("DELETE", "/api/v1/tokens/{id}", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin)) return *denied;
    if (Status s = cp.store().revoke_token(req.param("id")); !s.ok()) return HttpResponse::error(s);
    cp.audit(principal_of(req).actor(), "token.revoke", "", "", "", req.remote_addr,
             Json{{"token_id", req.param("id")}});
    return HttpResponse::json(Json{{"ok", true}});
  });

  http.route("GET", "/api/v1/audit", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    int64_t after = 0;
    if (auto a = req.query_value("after")) after = std::strtoll(a->c_str(), nullptr, 10);
    int limit = 500;
    if (auto l = req.query_value("limit")) limit = std::clamp(std::atoi(l->c_str()), 1, 5000);
    auto list = cp.store().list_audit(after, limit);
    if (!list.ok()) return HttpResponse::error(list.status());
    // A token limited to some environments sees their entries and the global ones.
    Json out = Json::array();
    for (const auto& a : *list)
      if (env_visible(req, a.env)) out.push_back(audit_json(a));
    return HttpResponse::json(Json{{"entries", out}});
  });
}

}  // namespace ferry
