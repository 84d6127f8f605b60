// Approvals, admin overrides of windows and freezes, secrets, audit verification.
#include "governance/approvals.h"
#include "governance/audit_chain.h"
#include "governance/secret_box.h"
#include "server/control_plane.h"

namespace ferry {

namespace {

bool valid_secret_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

}  // namespace

void add_governance_routes(HttpServer& http, ControlPlane& cp) {
  http.route("POST", "/api/v1/approvals", [&cp](HttpRequest& req) {
    auto body = object_body(req);
    if (!body.ok()) return HttpResponse::error(body.status());
    auto app = string_field(*body, "app", false), env = string_field(*body, "env", false),
         rel = string_field(*body, "release", false),
         comment = string_field(*body, "comment", false, 1000);
    for (auto* f : {&app, &env, &rel, &comment})
      if (!f->ok()) return HttpResponse::error(f->status());
    ApprovalRecord a;
    a.app = *app;
    a.env = *env;
    a.release = *rel;
    a.comment = *comment;
    if (auto denied = require(req, Role::kApprover, a.env)) return *denied;
    if (!cp.config()->environment(a.env))
      return HttpResponse::error(not_found("environment '" + a.env + "' is not configured"));
    if (Status s = cp.store().get_release(a.app, a.release).status(); !s.ok())
      return HttpResponse::error(s);
    a.approver = principal_of(req).actor();
    // The two-person rule against whoever asked for the deployment waiting on this.
    auto open = cp.store().list_deployments({.app = a.app, .env = a.env, .active_only = true});
    if (open.ok())
      for (const auto& d : *open)
        if (d.release == a.release)
          if (Status s = validate_approval(d.requested_by, a.approver); !s.ok()) {
            cp.audit(a.approver, "approval.refused", a.app, a.env, a.release, req.remote_addr,
                     Json{{"reason", s.message()}});
            return HttpResponse::error(s);
          }
    a.at_ms = to_unix_ms(cp.clock().now());
    if (Status s = cp.store().add_approval(a); !s.ok()) return HttpResponse::error(s);
    cp.audit(a.approver, "approval.grant", a.app, a.env, a.release, req.remote_addr,
             Json{{"comment", a.comment}});
    cp.engine().poke();
    return HttpResponse::json(Json{{"ok", true}, {"approver", a.approver}, {"at_ms", a.at_ms}},
                              201);
  });

  http.route("GET", "/api/v1/approvals", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    const std::string app = req.query_value("app").value_or(""),
                      env = req.query_value("env").value_or(""),
                      rel = req.query_value("release").value_or("");
    if (auto denied = require(req, Role::kViewer, env)) return *denied;
    auto list = cp.store().list_approvals(app, env, rel);
    if (!list.ok()) return HttpResponse::error(list.status());
    Json out = Json::array();
    for (const auto& a : *list)
      if (env_visible(req, a.env))
        out.push_back(Json{{"app", a.app},
                           {"env", a.env},
                           {"release", a.release},
                           {"approver", a.approver},
                           {"comment", a.comment},
                           {"at_ms", a.at_ms}});
    return HttpResponse::json(Json{{"approvals", out}});
  });

  // An admin lets a waiting deployment past a gate, with a reason: its window or freeze
  // (the default), or with {"gate": "slo"} its error-budget gate (docs/slo.md).
  http.route("POST", "/api/v1/deployments/{id}/override", [&cp](HttpRequest& req) {
    auto d = cp.store().get_deployment(req.param("id"));
    if (!d.ok()) return HttpResponse::error(d.status());
    if (auto denied = require(req, Role::kAdmin, d->env)) return *denied;
    auto body = parse_json(req.body.empty() ? "{}" : req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    const std::string reason = body->contains("reason") && (*body)["reason"].is_string()
                                   ? (*body)["reason"].get<std::string>()
                                   : "";
    if (reason.size() < 8 || reason.size() > 1000)
      return HttpResponse::error(
          invalid_argument("an override needs a reason of 8-1000 characters"));
    std::string gate = "window";
    if (body->is_object() && body->contains("gate")) {
      const Json& g = (*body)["gate"];
      if (!g.is_string() || (g != "window" && g != "slo"))
        return HttpResponse::error(
            invalid_argument("gate must be \"window\" (windows and freezes) or \"slo\""));
      gate = g.get<std::string>();
    }
    const std::string actor = principal_of(req).actor();
    const std::string what = gate == "slo" ? "SLO gate" : "window and freeze";
    auto seq = cp.store().append_event(
        {.deployment_id = d->id,
         .time_ms = to_unix_ms(cp.clock().now()),
         .type = EventType::kGateOverride,
         .message = what + " overridden by " + actor + ": " + reason,
         .data = Json{{"actor", actor}, {"reason", reason}, {"gate", gate}}});
    if (!seq.ok()) return HttpResponse::error(seq.status());
    cp.audit(actor, "gate.override", d->app, d->env, d->release, req.remote_addr,
             Json{{"deployment_id", d->id}, {"reason", reason}, {"gate", gate}});
    cp.engine().poke();
    return HttpResponse::json(Json{{"ok", true}});
  });

  http.route("PUT", "/api/v1/apps/{app}/envs/{env}/secrets/{name}", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin, req.param("env"))) return *denied;
    if (!cp.config()->app(req.param("app")) || !cp.config()->environment(req.param("env")))
      return HttpResponse::error(not_found("app or environment is not configured"));
    if (!valid_secret_name(req.param("name")))
      return HttpResponse::error(invalid_argument(
          "secret name must be 1-128 letters, digits or _, not starting with a digit"));
    auto body = parse_json(req.body);
    if (!body.ok())
      return HttpResponse::error(invalid_argument("body must be JSON {\"value\": \"...\"}"));
    if (!body->contains("value") || !(*body)["value"].is_string())
      return HttpResponse::error(invalid_argument("field 'value' (a string) is required"));
    const std::string value = (*body)["value"].get<std::string>();
    if (value.empty() || value.size() > 64 * 1024)
      return HttpResponse::error(invalid_argument("a secret value must be 1 byte to 64 KiB"));
    SecretRecord r;
    r.app = req.param("app");
    r.env = req.param("env");
    r.name = req.param("name");
    r.updated_at_ms = to_unix_ms(cp.clock().now());
    r.updated_by = principal_of(req).actor();
    if (Status s = seal_secret(cp.secret_box(), r, value); !s.ok()) return HttpResponse::error(s);
    if (Status s = cp.store().put_secret(r); !s.ok()) return HttpResponse::error(s);
    cp.masker().add(value);
    cp.audit(r.updated_by, "secret.set", r.app, r.env, "", req.remote_addr, Json{{"name", r.name}});
    // Running instances get the new value: each is replaced once its successor is ready.
    Status refreshed = cp.engine().refresh_instances(r.app, r.env, r.updated_by);
    return HttpResponse::json(Json{{"ok", true},
                                   {"name", r.name},
                                   {"updated_at_ms", r.updated_at_ms},
                                   {"instances_refreshed", refreshed.ok()},
                                   {"refresh_note", refreshed.ok() ? "" : refreshed.message()}});
  });

  http.route("GET", "/api/v1/apps/{app}/envs/{env}/secrets", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kDeployer, req.param("env"))) return *denied;
    auto list = cp.store().list_secrets(req.param("app"), req.param("env"));
    if (!list.ok()) return HttpResponse::error(list.status());
    Json out = Json::array();
    for (const auto& s : *list)  // names only: values never leave the server
      out.push_back(
          Json{{"name", s.name}, {"updated_at_ms", s.updated_at_ms}, {"updated_by", s.updated_by}});
    return HttpResponse::json(Json{{"secrets", out}});
  });

  http.route("DELETE", "/api/v1/apps/{app}/envs/{env}/secrets/{name}", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin, req.param("env"))) return *denied;
    if (Status s = cp.store().delete_secret(req.param("app"), req.param("env"), req.param("name"));
        !s.ok())
      return HttpResponse::error(s);
    cp.audit(principal_of(req).actor(), "secret.unset", req.param("app"), req.param("env"), "",
             req.remote_addr, Json{{"name", req.param("name")}});
    Status refreshed = cp.engine().refresh_instances(req.param("app"), req.param("env"),
                                                     principal_of(req).actor());
    return HttpResponse::json(Json{{"ok", true}, {"instances_refreshed", refreshed.ok()}});
  });

  // Streams the chain through the keyed verifier a page at a time: memory stays at one
  // page whatever the length of the log.
  http.route("GET", "/api/v1/audit/verify", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    std::optional<std::pair<int64_t, std::string>> expect;
    if (auto e = req.query_value("expect_head")) {
      auto parsed = parse_audit_head(*e);
      if (!parsed.ok()) return HttpResponse::error(parsed.status());
      expect = *parsed;
    }
    KeyedAuditVerifier verifier(cp.audit_key());
    std::string hash_at_expected;
    int64_t after = 0, entries = 0;
    while (true) {
      auto page = cp.store().list_audit(after, 1000);
      if (!page.ok()) return HttpResponse::error(page.status());
      if (page->empty()) break;
      after = page->back().seq;
      entries += static_cast<int64_t>(page->size());
      for (const auto& a : *page) {
        if (expect && a.seq == expect->first) hash_at_expected = a.hash;
        if (!verifier.add(a)) break;
      }
      if (!verifier.result().ok) break;
    }
    const AuditVerify& v = verifier.finish();
    Json j{{"ok", v.ok},
           {"entries", entries},
           {"last_seq", v.last_seq},
           {"last_hash", v.last_seq > 0 ? v.last_hash : ""},
           {"unkeyed_entries", verifier.v1_entries()}};
    if (!v.ok) {
      j["first_bad_seq"] = v.bad_seq;
      j["reason"] = v.reason;
    }
    if (expect) {
      Status s = check_expected_head(v, expect->first, expect->second, hash_at_expected);
      j["expected_head"] = std::to_string(expect->first) + ":" + expect->second;
      j["expected_head_ok"] = s.ok();
      if (!s.ok()) {
        j["ok"] = false;
        j["reason"] = v.ok ? s.message() : v.reason + "; " + s.message();
      }
    }
    return HttpResponse::json(j);
  });

  // The head of the chain, for another system to keep (and compare later).
  http.route("GET", "/api/v1/audit/head", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto h = cp.audit_head();
    if (!h.ok()) return HttpResponse::error(h.status());
    return HttpResponse::json(
        Json{{"seq", h->seq},
             {"hash", h->hash},
             {"head", h->seq > 0 ? std::to_string(h->seq) + ":" + h->hash : ""},
             {"time_ms", h->time_ms}});
  });
}

bool is_override_of(const DeploymentEvent& e, std::string_view gate) {
  if (e.type != EventType::kGateOverride) return false;
  // Overrides written before gates had names were of windows and freezes.
  const std::string named = e.data.is_object() ? e.data.value("gate", "window") : "window";
  return named == gate;
}

}  // namespace ferry
