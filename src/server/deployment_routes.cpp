// Deployments, apps, environment status, rollback and the event stream.
#include <algorithm>
#include <chrono>
#include <map>

#include "core/plan.h"
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
    Json envs = Json::array();
    for (const auto& env : config->environments)
      envs.push_back(
          Json{{"name", env.name}, {"requires", env.requires_envs}, {"approvals", env.approvals}});
    return HttpResponse::json(Json{{"apps", apps}, {"environments", envs}});
  });

  http.route("GET", "/api/v1/apps/{app}/envs/{env}/status", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer, req.param("env"))) return *denied;
    if (!cp.config()->environment(req.param("env")))
      return HttpResponse::error(
          not_found("environment " + req.param("env") + " is not configured"));
    Json agents = Json::array();
    for (AgentClient* a : cp.agents_for(req.param("env"))) {
      auto s = a->app_status(agent_app_name(req.param("app"), req.param("env")));
      Json j;
      if (s.ok()) {
        to_json(j, *s);
      } else {
        j = Json{{"error", s.status().message()}};
      }
      if (auto* h = dynamic_cast<HttpAgentClient*>(a)) j["agent"] = h->address();
      agents.push_back(std::move(j));
    }
    return HttpResponse::json(
        Json{{"app", req.param("app")}, {"env", req.param("env")}, {"agents", agents}});
  });

  http.route("POST", "/api/v1/deployments", [&cp](HttpRequest& req) {
    auto body = parse_json(req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    auto app = string_field(*body, "app"), env = string_field(*body, "env"),
         rel = string_field(*body, "release");
    for (auto* f : {&app, &env, &rel})
      if (!f->ok()) return HttpResponse::error(f->status());
    if (auto denied = require(req, Role::kDeployer, *env)) return *denied;
    const std::string actor = principal_of(req).actor();
    auto d = cp.engine().deploy(*app, *env, *rel, actor);
    if (!d.ok()) return HttpResponse::error(d.status());
    cp.audit(actor, "deployment.create", *app, *env, *rel, req.remote_addr,
             Json{{"deployment_id", d->id}, {"strategy", d->strategy}});
    return HttpResponse::json(deployment_json(*d), 201);
  });

  http.route("GET", "/api/v1/deployments", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    DeploymentFilter f;
    f.app = req.query_value("app").value_or("");
    f.env = req.query_value("env").value_or("");
    f.active_only = req.query_value("active").value_or("") == "1";
    f.limit = int_query(req, "limit", 50, 1, 500);
    auto list = cp.store().list_deployments(f);
    if (!list.ok()) return HttpResponse::error(list.status());
    Json out = Json::array();
    for (const auto& d : *list) out.push_back(deployment_json(d));
    return HttpResponse::json(Json{{"deployments", out}});
  });

  http.route("GET", "/api/v1/deployments/{id}", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto d = cp.store().get_deployment(req.param("id"));
    if (!d.ok()) return HttpResponse::error(d.status());
    Json j = deployment_json(*d);
    int64_t after = 0;
    if (auto a = req.query_value("after")) after = std::strtoll(a->c_str(), nullptr, 10);
    auto events = cp.store().list_events(d->id, after, 1000);
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
    auto body = parse_json(req.body.empty() ? "{}" : req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    auto rel = string_field(*body, "release", false);
    if (!rel.ok()) return HttpResponse::error(rel.status());
    const std::string actor = principal_of(req).actor();
    auto d = cp.engine().rollback(req.param("app"), req.param("env"), *rel, actor);
    if (!d.ok()) return HttpResponse::error(d.status());
    cp.audit(actor, "deployment.rollback_requested", d->app, d->env, d->release, req.remote_addr,
             Json{{"deployment_id", d->id}});
    return HttpResponse::json(deployment_json(*d), 201);
  });

  http.route("GET", "/api/v1/events", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    int64_t after = 0;
    if (auto a = req.query_value("after")) after = std::strtoll(a->c_str(), nullptr, 10);
    auto events = cp.store().list_events(req.query_value("deployment").value_or(""), after,
                                         int_query(req, "limit", 200, 1, 1000));
    if (!events.ok()) return HttpResponse::error(events.status());
    Json ev = Json::array();
    for (const auto& e : *events) ev.push_back(event_json(e));
    return HttpResponse::json(Json{{"events", ev}});
  });

  // Server-Sent Events: every deployment event as it is committed, plus a heartbeat.
  http.route("GET", "/api/v1/events/stream", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers.push_back({"Cache-Control", "no-store"});
    r.stream = [&cp](StreamWriter& w) {
      auto sub = cp.events().subscribe();
      if (!w.write(": ferry event stream\n\n")) {
        cp.events().unsubscribe(sub);
        return;
      }
      auto last_beat = std::chrono::steady_clock::now();
      while (true) {
        auto e = EventHub::next(*sub, 1000);
        if (!e && sub->closed) break;
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
