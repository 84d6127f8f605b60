// Game days (docs/api.md "Chaos"): start, list, read and stop experiments. Starting one
// needs an admin token for the environment (like a gate override: it hurts on purpose);
// stopping one needs a deployer (anyone who may roll back may end the harm); reading
// needs a viewer. The environment must say `chaos: allowed` (ChaosService checks it).
#include <cmath>

#include "server/chaos_service.h"
#include "server/control_plane.h"

namespace ferry {

namespace {

// A number field: absent or null is `def`; another type is an error naming the field.
Result<double> chaos_number(const Json& body, const char* name, double def) {
  if (!body.contains(name) || body.at(name).is_null()) return def;
  if (!body.at(name).is_number())
    return invalid_argument(std::string("field '") + name + "' must be a number");
  double v = body.at(name).get<double>();
  if (!std::isfinite(v))
    return invalid_argument(std::string("field '") + name + "' must be finite");
  return v;
}

// An integer field within [lo, hi] (a float or a number out of range is refused as such).
Result<int64_t> chaos_int(const Json& body, const char* name, int64_t def, int64_t lo, int64_t hi) {
  auto v = chaos_number(body, name, static_cast<double>(def));
  if (!v.ok()) return v.status();
  if (*v != std::floor(*v) || *v < static_cast<double>(lo) || *v > static_cast<double>(hi))
    return invalid_argument(std::string("field '") + name + "' must be a whole number from " +
                            std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<int64_t>(*v);
}

Result<ChaosRequest> chaos_request(const HttpRequest& req) {
  auto body = object_body(req);
  if (!body.ok()) return body.status();
  ChaosRequest r;
  auto app = string_field(*body, "app"), env = string_field(*body, "env"),
       kind = string_field(*body, "kind"), instance = string_field(*body, "instance", false, 256);
  for (auto* f : {&app, &env, &kind, &instance})
    if (!f->ok()) return f->status();
  r.app = *app;
  r.env = *env;
  r.instance = *instance;
  if (*kind == "kill_instance")
    r.kind = ChaosKind::kKillInstance;
  else if (*kind == "latency")
    r.kind = ChaosKind::kLatency;
  else if (*kind == "errors")
    r.kind = ChaosKind::kErrors;
  else
    return invalid_argument("field 'kind' must be \"kill_instance\", \"latency\" or \"errors\"");
  auto latency = chaos_int(*body, "latency_ms", 0, 0, kMaxFaultLatencyMs);
  auto status = chaos_int(*body, "error_status", 503, 500, 599);
  auto duration = chaos_int(*body, "duration_ms", 0, 0, kMaxFaultDurationMs);
  auto share = chaos_number(*body, "share", 0);
  for (auto* f : {&latency, &status, &duration})
    if (!f->ok()) return f->status();
  if (!share.ok()) return share.status();
  r.latency_ms = static_cast<int>(*latency);
  r.error_status = static_cast<int>(*status);
  r.duration_ms = *duration;
  r.share = *share;
  r.actor = principal_of(req).actor();
  r.source = req.remote_addr;
  return r;
}

}  // namespace

void add_chaos_routes(HttpServer& http, ControlPlane& cp) {
  http.route("POST", "/api/v1/chaos", [&cp](HttpRequest& req) {
    // The permission first, on the environment named (a body that does not parse names none).
    auto body = object_body(req);
    const std::string env = body.ok() && body->contains("env") && (*body)["env"].is_string()
                                ? (*body)["env"].get<std::string>()
                                : "";
    if (auto denied = require(req, Role::kAdmin, env)) return *denied;
    auto r = chaos_request(req);
    if (!r.ok()) return HttpResponse::error(r.status());
    auto out = cp.chaos().start_experiment(*r);
    if (!out.ok()) return HttpResponse::error(out.status());
    return HttpResponse::json(*out, 201);
  });
  http.route("GET", "/api/v1/chaos", [&cp](HttpRequest& req) {
    const std::string app = req.query_value("app").value_or(""),
                      env = req.query_value("env").value_or("");
    if (auto denied = require(req, Role::kViewer, env)) return *denied;
    Json all = cp.chaos().list(app.substr(0, 128), env.substr(0, 128),
                               req.query_value("running").value_or("") == "true");
    Json visible = Json::array();
    for (auto& e : all)
      if (env_visible(req, e.value("env", ""))) visible.push_back(std::move(e));
    return HttpResponse::json(Json{{"experiments", visible}});
  });
  http.route("GET", "/api/v1/chaos/{id}", [&cp](HttpRequest& req) {
    auto e = cp.chaos().get(req.param("id"));
    if (!e.ok()) return HttpResponse::error(e.status());
    if (auto denied = require(req, Role::kViewer, e->value("env", ""))) return *denied;
    return HttpResponse::json(*e);
  });
  http.route("POST", "/api/v1/chaos/{id}/stop", [&cp](HttpRequest& req) {
    auto e = cp.chaos().get(req.param("id"));
    if (!e.ok()) return HttpResponse::error(e.status());
    if (auto denied = require(req, Role::kDeployer, e->value("env", ""))) return *denied;
    auto out =
        cp.chaos().stop_experiment(req.param("id"), principal_of(req).actor(), req.remote_addr);
    if (!out.ok()) return HttpResponse::error(out.status());
    return HttpResponse::json(*out);
  });
}

}  // namespace ferry
