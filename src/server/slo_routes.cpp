// SLO routes (docs/api.md, docs/slo.md): the status of every SLO the caller may see, and
// one SLO in detail with its burn chart and the deployments that spent its budget.
#include <fmt/format.h>

#include <charconv>

#include "server/control_plane.h"

namespace ferry {

namespace {

Json objective_json(const slo::ObjectiveStatus& o) {
  Json burn = Json::object();
  for (const auto& [w, v] : o.burn) burn[w] = v;
  Json alerts = Json::object();
  for (const auto& [name, firing] : o.alerts) alerts[name] = firing;
  Json j{{"objective", std::string(slo::to_string(o.objective))},
         {"target", o.target},
         {"requests", o.total},
         {"bad", o.bad},
         {"attainment", o.attainment},
         {"budget_remaining", o.budget_remaining},
         {"burn", burn},
         {"alerts", alerts}};
  if (o.objective == slo::Objective::kLatency) j["threshold_ms"] = o.threshold_ms;
  return j;
}

Json status_json(const std::string& app, const std::string& env, const slo::Status& st) {
  Json objectives = Json::array();
  for (const auto& o : st.objectives) objectives.push_back(objective_json(o));
  return Json{{"app", app},
              {"env", env},
              {"window_ms", st.window_ms},
              {"now_ms", st.now_ms},
              {"budget_remaining", st.budget_remaining()},
              {"objectives", objectives}};
}

// ?hours=N for the burn chart: a whole number from 1 to 168; anything else is refused.
Result<int> chart_hours(const HttpRequest& req) {
  auto v = req.query_value("hours");
  if (!v) return 6;
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || p != v->data() + v->size() || n < 1 || n > 168)
    return invalid_argument("hours: \"" + v->substr(0, 16) +
                            "\" is not a whole number of hours from 1 to 168");
  return n;
}

// Burn rate per objective over each step of the chart (at most 120 points).
Json burn_chart(const SloSpec& spec, const std::vector<slo::Bucket>& buckets, int64_t now_ms,
                int hours) {
  const int64_t end = slo::minute_of(now_ms) + 60'000;
  const int64_t span = static_cast<int64_t>(hours) * 3'600'000;
  const int64_t step = std::max<int64_t>(60'000, span / 120 / 60'000 * 60'000);
  Json points = Json::array();
  for (int64_t t = end - span; t < end; t += step) {
    const slo::Counts c = slo::sum(buckets, t, t + step);
    Json p{{"start_ms", t}, {"requests", c.requests}};
    if (spec.availability_target) {
      auto gb = slo::classify(c, slo::Objective::kAvailability, 0);
      p["availability_burn"] =
          gb.total ? (static_cast<double>(gb.bad) / gb.total) / (1 - *spec.availability_target)
                   : 0.0;
    }
    if (spec.latency_target) {
      auto gb = slo::classify(c, slo::Objective::kLatency, spec.latency_threshold_ms);
      p["latency_burn"] =
          gb.total ? (static_cast<double>(gb.bad) / gb.total) / (1 - *spec.latency_target) : 0.0;
    }
    points.push_back(std::move(p));
  }
  return Json{{"step_ms", step}, {"points", points}};
}

}  // namespace

void add_slo_routes(HttpServer& http, ControlPlane& cp) {
  // Every app and environment with an SLO that the caller's token may see.
  http.route("GET", "/api/v1/slo", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto config = cp.config();
    Json out = Json::array();
    for (const auto& env : config->environments) {
      if (!env_visible(req, env.name)) continue;
      for (const auto& app : config->apps) {
        if (!config->app_for_env(app, env.name).slo) continue;
        auto st = cp.slo().status(app.name, env.name);
        if (!st.ok()) return HttpResponse::error(st.status());
        out.push_back(status_json(app.name, env.name, *st));
      }
    }
    return HttpResponse::json(Json{{"slos", out}});
  });

  http.route("GET", "/api/v1/slo/{app}/{env}", [&cp](HttpRequest& req) {
    const std::string app = req.param("app"), env = req.param("env");
    if (auto denied = require(req, Role::kViewer, env)) return *denied;
    auto config = cp.config();
    if (!config->app(app) || !config->environment(env))
      return HttpResponse::error(not_found("app or environment is not configured"));
    auto spec = cp.slo().spec_for(app, env);
    if (!spec)
      return HttpResponse::error(not_found("app " + app + " has no SLO in environment " + env +
                                           " (apps." + app + ".slo in ferry.yaml, docs/slo.md)"));
    auto hours = chart_hours(req);
    if (!hours.ok()) return HttpResponse::error(hours.status());
    auto st = cp.slo().status(app, env);
    if (!st.ok()) return HttpResponse::error(st.status());
    Json j = status_json(app, env, *st);
    const int64_t now = st->now_ms;
    auto b = cp.slo().buckets(app, env, now - int64_t{*hours} * 3'600'000 - 60'000, now + 60'000);
    if (!b.ok()) return HttpResponse::error(b.status());
    j["chart"] = burn_chart(*spec, *b, now, *hours);
    // The deployments that spent it: the latest ten here.
    DeploymentFilter f;
    f.app = app;
    f.env = env;
    f.limit = 10;
    auto list = cp.store().list_deployments(f);
    if (!list.ok()) return HttpResponse::error(list.status());
    const auto spent = cp.slo().spend(*list);
    Json deps = Json::array();
    for (const auto& d : *list) {
      auto it = spent.find(d.id);
      if (it == spent.end()) continue;
      deps.push_back(Json{{"id", d.id},
                          {"release", d.release},
                          {"state", std::string(to_string(d.state))},
                          {"created_at_ms", d.created_at_ms},
                          {"finished_at_ms", d.finished_at_ms},
                          {"budget_spent", it->second.during},
                          {"budget_spent_after", it->second.after},
                          {"after_complete", it->second.after_complete},
                          {"traffic_since_ms", it->second.traffic_since_ms}});
    }
    j["deployments"] = deps;
    if (const EnvironmentSpec* e = config->environment(env); e && e->slo_gate.enabled()) {
      Json g = Json::object();
      if (e->slo_gate.min_budget) g["min_budget"] = *e->slo_gate.min_budget;
      if (e->slo_gate.max_burn) g["max_burn"] = *e->slo_gate.max_burn;
      if (e->slo_gate.max_budget_spend) g["max_budget_spend"] = *e->slo_gate.max_budget_spend;
      auto why = slo::gate_wait_reason(e->slo_gate, *st);
      g["open"] = !why.has_value();
      if (why) g["reason"] = *why;
      j["gate"] = g;
    }
    return HttpResponse::json(j);
  });
}

}  // namespace ferry
