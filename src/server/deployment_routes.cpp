// Deployments, apps, environment status, rollback and the event stream.
#include <algorithm>
#include <chrono>
#include <map>

#include "core/plan.h"
#include "engine/reconciler.h"
#include "server/control_plane.h"

namespace ferry {

namespace {

int int_query(const HttpRequest& req, const std::string& name, int def, int lo, int hi) {
  auto v = req.query_value(name);
  if (!v) return def;
  try {
    return std::clamp(std::stoi(*v), lo, hi);
  } catch (...) {
    return def;
  }
}

}  // namespace

void add_deployment_routes(HttpServer& http, ControlPlane& cp) {
  http.route("GET", "/api/v1/apps", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto config = cp.config();
    // Two store queries whatever the number of apps: every app's current releases, and the
    // deployments in progress (at most one per app and environment).
    std::map<std::string, std::vector<EnvReleaseRecord>> current;
    if (auto all = cp.store().list_env_releases(""); all.ok())
      for (auto& r : *all) current[r.app].push_back(std::move(r));
    std::map<std::string, Json> active;
    const int most_active =
        static_cast<int>(std::max<size_t>(1, config->apps.size() * config->environments.size()));
    if (auto open = cp.store().list_deployments({.active_only = true, .limit = most_active});
        open.ok())
      for (const auto& d : *open) {
        auto& list = active[d.app];
        if (list.is_null()) list = Json::array();
        list.push_back(deployment_json(d));
      }
    Json apps = Json::array();
    for (const auto& app : config->apps) {
      Json envs = Json::object();
      for (const auto& env : config->environments) envs[env.name] = Json{{"release", nullptr}};
      for (const auto& r : current[app.name])
        envs[r.env] =
            Json{{"release", r.release}, {"deployment_id", r.deployment_id}, {"at_ms", r.at_ms}};
      auto it = active.find(app.name);
      apps.push_back(Json{{"name", app.name},
                          {"port", app.port},
                          {"strategy", std::string(strategy_name(app.strategy.kind))},
                          {"environments", envs},
                          {"active", it == active.end() ? Json::array() : it->second}});
    }
    // A token limited to some environments sees only those.
    for (auto& a : apps) {
      Json visible = Json::object();
      for (auto it = a["environments"].begin(); it != a["environments"].end(); ++it)
        if (env_visible(req, it.key())) visible[it.key()] = it.value();
      a["environments"] = visible;
      Json active = Json::array();
      for (const auto& d : a["active"])
        if (env_visible(req, d.value("env", ""))) active.push_back(d);
      a["active"] = active;
    }
    Json envs = Json::array();
    for (const auto& env : config->environments)
      if (env_visible(req, env.name))
        envs.push_back(Json{
            {"name", env.name}, {"requires", env.requires_envs}, {"approvals", env.approvals}});
    return HttpResponse::json(Json{{"apps", apps}, {"environments", envs}});
  });

  http.route("GET", "/api/v1/apps/{app}/envs/{env}/status", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer, req.param("env"))) return *denied;
    if (!cp.config()->environment(req.param("env")))
      return HttpResponse::error(
          not_found("environment " + req.param("env") + " is not configured"));
    // Per host, read at once: what it runs and reports, and what it should (the
    // reconciler's desired generation); `behind` when it has not taken that yet.
    const auto hosts = cp.agents_for(req.param("env"));
    const std::string agent_app = agent_app_name(req.param("app"), req.param("env"));
    auto reads = fan_out<Result<AppStatus>>(
        hosts.size(), [&](size_t i) { return hosts[i]->app_status(agent_app); });
    std::map<std::string, AgentStanding> standing;
    for (const auto& st : cp.engine().reconciler().standings())
      if (st.app == req.param("app") && st.env == req.param("env")) standing[st.agent] = st;
    Json agents = Json::array();
    for (size_t i = 0; i < hosts.size(); ++i) {
      AgentClient* a = hosts[i];
      Json j;
      if (reads[i].ok()) {
        to_json(j, *reads[i]);
        j["reachable"] = true;
      } else {
        j = Json{{"error", reads[i].status().message()},
                 {"reachable", !is_unreachable(reads[i].status())}};
      }
      j["agent"] = a->name();
      j["address"] = a->address();
      if (auto it = standing.find(a->name()); it != standing.end()) {
        const int64_t reported =
            reads[i].ok() ? reads[i]->generation : it->second.reported_generation;
        j["desired_generation"] = it->second.desired_generation;
        j["behind"] = reported < it->second.desired_generation;
        if (!it->second.last_error.empty()) j["last_error"] = it->second.last_error;
      }
      agents.push_back(std::move(j));
    }
    return HttpResponse::json(
        Json{{"app", req.param("app")}, {"env", req.param("env")}, {"agents", agents}});
  });

  http.route("POST", "/api/v1/deployments", [&cp](HttpRequest& req) {
    auto body = object_body(req);
    if (!body.ok()) return HttpResponse::error(body.status());
    auto app = string_field(*body, "app"), env = string_field(*body, "env"),
         rel = string_field(*body, "release");
    for (auto* f : {&app, &env, &rel})
      if (!f->ok()) return HttpResponse::error(f->status());
    if (auto denied = require(req, Role::kDeployer, *env)) return *denied;
    const std::string actor = principal_of(req).actor();
    // The scan gate's override: admin only, with a reason, audited.
    if (body->contains("override_scan") && !(*body)["override_scan"].is_boolean())
      return HttpResponse::error(invalid_argument("field 'override_scan' must be true or false"));
    DeployOptions opts;
    if (body->value("override_scan", false)) {
      if (auto denied = require(req, Role::kAdmin, *env)) return *denied;
      auto reason = string_field(*body, "reason", false, 1000);
      if (!reason.ok()) return HttpResponse::error(reason.status());
      if (reason->size() < 8)
        return HttpResponse::error(
            invalid_argument("--override-scan needs --reason of at least 8 characters"));
      opts.scan_override_reason = *reason;
    }
    auto d = cp.engine().deploy(*app, *env, *rel, actor, opts);
    if (!d.ok()) {
      if (d.status().code() == Code::kFailedPrecondition &&
          d.status().message().find("scan status") != std::string::npos)
        cp.audit(actor, "deployment.scan_refused", *app, *env, *rel, req.remote_addr,
                 Json{{"reason", d.status().message()}});
      return HttpResponse::error(d.status());
    }
    Json details{{"deployment_id", d->id}, {"strategy", d->strategy}};
    if (!opts.scan_override_reason.empty()) {
      details["scan_override_reason"] = opts.scan_override_reason;
      cp.audit(actor, "deployment.scan_override", *app, *env, *rel, req.remote_addr,
               Json{{"deployment_id", d->id}, {"reason", opts.scan_override_reason}});
    }
    cp.audit(actor, "deployment.create", *app, *env, *rel, req.remote_addr, details);
    return HttpResponse::json(deployment_json(*d), 201);
  });

  http.route("GET", "/api/v1/deployments", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    DeploymentFilter f;
    f.app = req.query_value("app").value_or("");
    f.env = req.query_value("env").value_or("");
    f.active_only = req.query_value("active").value_or("") == "1";
    f.limit = int_query(req, "limit", 50, 1, 500);
    if (auto denied = require(req, Role::kViewer, f.env)) return *denied;
    auto list = cp.store().list_deployments(f);
    if (!list.ok()) return HttpResponse::error(list.status());
    std::vector<DeploymentRecord> visible;
    for (const auto& d : *list)
      if (env_visible(req, d.env)) visible.push_back(d);
    // The error budget each one spent, where its app has an SLO (docs/slo.md).
    const auto spent = cp.slo().spend(visible);
    Json out = Json::array();
    for (const auto& d : visible) {
      Json j = deployment_json(d);
      if (auto it = spent.find(d.id); it != spent.end())
        j["slo_spend"] = Json{{"during", it->second.during},
                              {"after", it->second.after},
                              {"after_complete", it->second.after_complete},
                              {"traffic_since_ms", it->second.traffic_since_ms}};
      out.push_back(std::move(j));
    }
    return HttpResponse::json(Json{{"deployments", out}});
  });

  http.route("GET", "/api/v1/deployments/{id}", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto d = cp.store().get_deployment(req.param("id"));
    if (!d.ok()) return HttpResponse::error(d.status());
    if (auto denied = require(req, Role::kViewer, d->env)) return *denied;
    int64_t after = 0;
    if (auto a = req.query_value("after")) after = std::strtoll(a->c_str(), nullptr, 10);
    // The runner writes the row and its events in one transaction, but these are separate
    // reads: the row is read again after the events, and when its version moved in between
    // (a commit landed) both are read again, so the answer is one moment of the deployment:
    // a client that waits for an event sees the state that came with it, and one that waits
    // for a state sees its events. After a few tries under constant commits, the row may be
    // ahead of the list, never behind it.
    auto events = cp.store().list_events(d->id, after, 1000);
    for (int tries = 0; tries < 5; ++tries) {
      auto again = cp.store().get_deployment(d->id);
      if (!again.ok()) break;
      const bool moved = again->version != d->version;
      d = std::move(again);
      if (!moved) break;
      events = cp.store().list_events(d->id, after, 1000);
    }
    Json j = deployment_json(*d);
    Json ev = Json::array();
    if (events.ok())
      for (const auto& e : *events) ev.push_back(event_json(e));
    j["events"] = ev;
    return HttpResponse::json(j);
  });

  for (const char* verb : {"pause", "resume", "promote", "abort"}) {
    http.route("POST", std::string("/api/v1/deployments/{id}/") + verb,
               [&cp, v = std::string(verb)](HttpRequest& req) {
                 auto d = cp.store().get_deployment(req.param("id"));
                 if (!d.ok()) return HttpResponse::error(d.status());
                 if (auto denied = require(req, Role::kDeployer, d->env)) return *denied;
                 const std::string actor = principal_of(req).actor();
                 Status s = v == "pause"     ? cp.engine().pause(d->id, actor)
                            : v == "resume"  ? cp.engine().resume(d->id, actor)
                            : v == "promote" ? cp.engine().promote(d->id, actor)
                                             : cp.engine().abort(d->id, actor);
                 if (!s.ok()) return HttpResponse::error(s);
                 cp.audit(actor, "deployment." + v, d->app, d->env, d->release, req.remote_addr,
                          Json{{"deployment_id", d->id}});
                 return HttpResponse::json(Json{{"ok", true}, {"id", d->id}, {"command", v}});
               });
  }

  http.route("POST", "/api/v1/apps/{app}/envs/{env}/rollback", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kDeployer, req.param("env"))) return *denied;
    auto body = object_body(req, true);
    if (!body.ok()) return HttpResponse::error(body.status());
    auto rel = string_field(*body, "release", false);
    if (!rel.ok()) return HttpResponse::error(rel.status());
    if (body->contains("with_strategy") && !(*body)["with_strategy"].is_boolean())
      return HttpResponse::error(invalid_argument("field 'with_strategy' must be true or false"));
    const bool with_strategy = body->value("with_strategy", false);
    const std::string actor = principal_of(req).actor();
    auto d = cp.engine().rollback(req.param("app"), req.param("env"), *rel, actor, with_strategy);
    if (!d.ok()) return HttpResponse::error(d.status());
    cp.audit(actor, "deployment.rollback_requested", d->app, d->env, d->release, req.remote_addr,
             Json{{"deployment_id", d->id}, {"with_strategy", with_strategy}});
    return HttpResponse::json(deployment_json(*d), 201);
  });

  http.route("GET", "/api/v1/events", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    int64_t after = 0;
    if (auto a = req.query_value("after")) after = std::strtoll(a->c_str(), nullptr, 10);
    const std::string deployment = req.query_value("deployment").value_or("");
    if (!deployment.empty()) {
      auto d = cp.store().get_deployment(deployment);
      if (!d.ok()) return HttpResponse::error(d.status());
      if (auto denied = require(req, Role::kViewer, d->env)) return *denied;
    }
    auto events = cp.store().list_events(deployment, after, int_query(req, "limit", 200, 1, 1000));
    if (!events.ok()) return HttpResponse::error(events.status());
    Json ev = Json::array();
    std::map<std::string, bool> visible;  // deployment id → in the token's scope
    for (const auto& e : *events) {
      auto it = visible.find(e.deployment_id);
      if (it == visible.end()) {
        auto d = cp.store().get_deployment(e.deployment_id);
        it = visible.emplace(e.deployment_id, d.ok() && env_visible(req, d->env)).first;
      }
      if (it->second) ev.push_back(event_json(e));
    }
    return HttpResponse::json(Json{{"events", ev}});
  });

  // Server-Sent Events: every deployment event as it is committed, plus a heartbeat.
  http.route("GET", "/api/v1/events/stream", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers.push_back({"Cache-Control", "no-store"});
    const Principal who = principal_of(req);
    r.stream = [&cp, who](StreamWriter& w) {
      // The token is checked again every half second: a revoked or expired token ends
      // the stream within a second, not when the client goes away.
      auto still_valid = [&cp, &who] {
        auto rec = cp.store().get_token(who.token_id);
        if (!rec.ok() || rec->revoked) return false;
        return rec->expires_at_ms == 0 || to_unix_ms(cp.clock().now()) < rec->expires_at_ms;
      };
      auto sub = cp.events().subscribe();
      if (!w.write(": ferry event stream\n\n")) {
        cp.events().unsubscribe(sub);
        return;
      }
      auto last_beat = std::chrono::steady_clock::now();
      auto last_check = last_beat;
      while (true) {
        auto e = EventHub::next(*sub, 500);
        if (!e && sub->closed) break;
        if (const auto now = std::chrono::steady_clock::now();
            now - last_check >= std::chrono::milliseconds(500)) {
          last_check = now;
          if (!still_valid()) {
            (void)w.write("event: end\ndata: {\"reason\":\"token revoked or expired\"}\n\n");
            break;
          }
        }
        if (e && !scope_allows(who.envs, e->value("env", ""))) continue;
        std::string chunk;
        if (e) {
          chunk = "id: " + std::to_string(e->value("seq", int64_t{0})) +
                  "\nevent: deployment\ndata: " + dump_json(*e) + "\n\n";
        } else if (std::chrono::steady_clock::now() - last_beat > std::chrono::seconds(10)) {
          chunk = ": ping\n\n";
          last_beat = std::chrono::steady_clock::now();
        }
        if (!chunk.empty() && !w.write(chunk)) break;
      }
      cp.events().unsubscribe(sub);
    };
    return r;
  });
}

}  // namespace ferry
