#include "agent/agent_server.h"

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <memory>

#include "common/crypto.h"

namespace ferry {

namespace {

// The app and environment the control plane names explicitly become the instances'
// FERRY_APP and FERRY_ENV; they must agree with the agent's name for the app.
Status apply_app_identity(AppDesiredState& d) {
  if (d.app_name.empty() && d.env.empty()) return Status::Ok();  // an older server
  if (d.app_name.empty() || d.env.empty() || agent_app_name(d.app_name, d.env) != d.app)
    return invalid_argument("desired state: app_name '" + d.app_name + "' and env '" + d.env +
                            "' do not make the app's name '" + d.app + "' (APP.ENV)");
  for (auto& i : d.instances) {
    i.run.env["FERRY_APP"] = d.app_name;
    i.run.env["FERRY_ENV"] = d.env;
  }
  return Status::Ok();
}

HttpResponse status_or_ok(const Status& s) {
  if (!s.ok()) return HttpResponse::error(s);
  return HttpResponse::json(Json{{"ok", true}});
}

// For a load balancer in front of several hosts (deploy/edge/, docs/operations.md, "A load
// balancer in front of several hosts"): whether this host serves `app` — at least one ready
// instance of a release with weight — and is not taken out. Taken out (PUT /v1/ready
// {"out": true}, from `ferry agents out NAME`), every app answers 503 while the routers keep
// serving, so the balancer stops sending here before anything drains.
HttpResponse readiness(Agent& agent, const std::string& app, EdgeReadiness& edge) {
  edge.asked();
  const bool out = edge.out();
  const bool draining = edge.draining();
  int ready = 0;
  if (auto s = agent.app_status(app); s.ok())
    for (const auto& i : s->instances) {
      auto w = s->weights.find(i.release);
      if (i.state == InstanceState::kReady && w != s->weights.end() && w->second > 0) ++ready;
    }
  const bool serving = !out && !draining && ready > 0;
  // Unknown apps answer like apps with no ready instance: no token, so no app list either.
  return HttpResponse::json(
      Json{{"ready", serving}, {"out", out}, {"stopping", draining}, {"instances_ready", ready}},
      serving ? 200 : 503);
}

// PUT /v1/revoked {"serials": [...]}: adds to the agent's revocation list (only adds).
HttpResponse push_revoked(RevocationList& list, const HttpRequest& req) {
  auto body = parse_json(req.body);
  if (!body.ok()) return HttpResponse::error(body.status());
  if (!body->is_object() || !(*body)["serials"].is_array())
    return HttpResponse::error(
        invalid_argument("revoked: the body must be {\"serials\": [\"HEX\", ...]}"));
  std::vector<std::string> serials;
  for (const auto& s : (*body)["serials"]) {
    if (!s.is_string())
      return HttpResponse::error(invalid_argument("revoked: every serial must be a string"));
    serials.push_back(s.get<std::string>());
  }
  auto added = list.add(serials);
  if (!added.ok()) return HttpResponse::error(added.status());
  auto all = list.serials();
  if (!all.ok()) return HttpResponse::error(all.status());
  return HttpResponse::json(Json{{"added", *added}, {"count", all->size()}});
}

}  // namespace

Result<std::string> read_token_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return not_found("token file " + path + " does not exist");
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return failed_precondition("token file " + path +
                               " is readable by group or others; run: chmod 600 " + path);
  if (st.st_size > 4096) return invalid_argument("token file " + path + " is too large");
  std::ifstream f(path);
  std::string token;
  std::getline(f, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 24)
    return invalid_argument("token file " + path + " must hold a token of 24 or more characters");
  return token;
}

void add_readiness_routes(HttpServer& server, Agent& agent, std::shared_ptr<EdgeReadiness> edge) {
  server.route("GET", "/v1/ready/{app}", [&agent, edge](HttpRequest& req) {
    return readiness(agent, req.param("app"), *edge);
  });
}

void add_agent_routes(HttpServer& server, Agent& agent, std::string token, AgentApiExtras extras) {
  auto edge = extras.edge ? extras.edge : std::make_shared<EdgeReadiness>();
  auto revoked = extras.revoked;
  server.use([token](HttpRequest& req) -> std::optional<HttpResponse> {
    if (req.path == "/v1/health") return std::nullopt;
    if (req.method == "GET" && req.path.starts_with("/v1/ready/")) return std::nullopt;
    const std::string auth = req.header("authorization");
    const std::string prefix = "Bearer ";
    if (!auth.starts_with(prefix) || !constant_time_equal(auth.substr(prefix.size()), token))
      return HttpResponse::error(unauthenticated("missing or wrong agent token"));
    return std::nullopt;
  });
  server.route("GET", "/v1/health", [&agent](HttpRequest&) {
    return HttpResponse::json(Json{{"ok", true}, {"apps", agent.apps().size()}});
  });
  add_readiness_routes(server, agent, edge);
  server.route("PUT", "/v1/ready", [edge](HttpRequest& req) {
    auto body = parse_json(req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    if (!body->is_object() || !(*body)["out"].is_boolean())
      return HttpResponse::error(invalid_argument("ready: the body must be {\"out\": true|false}"));
    if (Status s = edge->set_out((*body)["out"].get<bool>()); !s.ok())
      return HttpResponse::error(s);
    return HttpResponse::json(Json{{"ok", true}, {"out", edge->out()}});
  });
  // The server pushes its revocation list here (server/revocation_push.h).
  server.route("GET", "/v1/revoked", [revoked](HttpRequest&) {
    if (!revoked)
      return HttpResponse::error(not_found("this agent serves no TLS: no revocation list"));
    auto all = revoked->serials();
    if (!all.ok()) return HttpResponse::error(all.status());
    return HttpResponse::json(Json{{"serials", *all}});
  });
  server.route("PUT", "/v1/revoked", [revoked](HttpRequest& req) {
    if (!revoked)
      return HttpResponse::error(not_found("this agent serves no TLS: no revocation list"));
    return push_revoked(*revoked, req);
  });
  server.route("GET", "/metrics", [&agent](HttpRequest&) {
    return HttpResponse::text(agent.metrics().expose(),
                              std::string(metrics::Registry::kContentType));
  });
  server.route("GET", "/v1/apps", [&agent](HttpRequest&) {
    return HttpResponse::json(Json{{"apps", agent.apps()}});
  });
  // Every app's accepted generation in one answer: the control plane's periodic check that
  // the agent still has what it should (one call per agent, not one per app).
  server.route("GET", "/v1/generations", [&agent](HttpRequest&) {
    auto g = agent.generations();
    if (!g.ok()) return HttpResponse::error(g.status());
    return HttpResponse::json(Json{{"apps", *g}});
  });
  server.route("PUT", "/v1/apps/{app}", [&agent](HttpRequest& req) {
    auto body = parse_json(req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    AppDesiredState d;
    try {
      from_json(*body, d);
    } catch (const std::exception& e) {
      return HttpResponse::error(invalid_argument(std::string("desired state: ") + e.what()));
    }
    if (d.app.empty()) d.app = req.param("app");
    if (d.app != req.param("app"))
      return HttpResponse::error(
          invalid_argument("body names app " + d.app + ", path " + req.param("app")));
    if (Status s = apply_app_identity(d); !s.ok()) return HttpResponse::error(s);
    // Accepted at once: the answer names the generation the app converges to; the caller
    // watches GET /v1/apps/{app} (applied_generation, instance states) for convergence.
    auto g = agent.accept(d);
    if (!g.ok()) return HttpResponse::error(g.status());
    return HttpResponse::json(Json{{"ok", true}, {"generation", *g}}, 202);
  });
  server.route("PUT", "/v1/apps/{app}/weights", [&agent](HttpRequest& req) {
    auto body = parse_json(req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    try {
      auto g = agent.accept_weights(req.param("app"), body->value("generation", int64_t{0}),
                                    body->at("weights").get<std::map<std::string, int>>());
      if (!g.ok()) return HttpResponse::error(g.status());
      return HttpResponse::json(Json{{"ok", true}, {"generation", *g}});
    } catch (const std::exception& e) {
      return HttpResponse::error(invalid_argument(std::string("weights: ") + e.what()));
    }
  });
  server.route("GET", "/v1/apps/{app}", [&agent](HttpRequest& req) {
    auto s = agent.app_status(req.param("app"));
    if (!s.ok()) return HttpResponse::error(s.status());
    Json j;
    to_json(j, *s);
    return HttpResponse::json(j);
  });
  server.route("DELETE", "/v1/apps/{app}", [&agent](HttpRequest& req) {
    return status_or_ok(agent.remove_app(req.param("app")));
  });
  add_agent_fault_routes(server, agent);
}

}  // namespace ferry
