// The agent's game-day endpoints (docs/agent.md, "Faults"): router faults per app that end
// by themselves, their counters, and killing one instance. Behind the agent token like
// every other agent route (add_agent_routes installs the check before these).
#include "agent/agent_server.h"

namespace ferry {

void add_agent_fault_routes(HttpServer& server, Agent& agent) {
  server.route("PUT", "/v1/apps/{app}/fault", [&agent](HttpRequest& req) {
    auto body = parse_json(req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    FaultSetting f;
    try {
      from_json(*body, f);
    } catch (const std::exception& e) {
      return HttpResponse::error(invalid_argument(std::string("fault: ") + e.what()));
    }
    if (Status s = f.validate(); !s.ok()) return HttpResponse::error(s);
    if (Status s = agent.set_fault(req.param("app"), f); !s.ok()) return HttpResponse::error(s);
    auto r = agent.fault_report(req.param("app"));
    if (!r.ok()) return HttpResponse::error(r.status());
    Json j;
    to_json(j, *r);
    return HttpResponse::json(j);
  });
  server.route("GET", "/v1/apps/{app}/fault", [&agent](HttpRequest& req) {
    auto r = agent.fault_report(req.param("app"));
    if (!r.ok()) return HttpResponse::error(r.status());
    Json j;
    to_json(j, *r);
    return HttpResponse::json(j);
  });
  server.route("DELETE", "/v1/apps/{app}/fault", [&agent](HttpRequest& req) {
    const std::string experiment = req.query_value("experiment").value_or("");
    if (experiment.size() > 64)
      return HttpResponse::error(invalid_argument("experiment: at most 64 characters"));
    if (Status s = agent.clear_fault(req.param("app"), experiment); !s.ok())
      return HttpResponse::error(s);
    return HttpResponse::json(Json{{"ok", true}});
  });
  server.route("POST", "/v1/apps/{app}/kill", [&agent](HttpRequest& req) {
    auto body = parse_json(req.body.empty() ? "{}" : req.body);
    if (!body.ok()) return HttpResponse::error(body.status());
    std::string id;
    if (body->is_object() && body->contains("instance")) {
      const Json& v = (*body)["instance"];
      if (!v.is_string() || v.get<std::string>().size() > 256)
        return HttpResponse::error(invalid_argument("instance must be a string of at most 256"));
      id = v.get<std::string>();
    } else if (!body->is_object()) {
      return HttpResponse::error(invalid_argument("body must be a JSON object"));
    }
    auto killed = agent.kill_instance(req.param("app"), id);
    if (!killed.ok()) return HttpResponse::error(killed.status());
    return HttpResponse::json(Json{{"ok", true}, {"instance", *killed}});
  });
}

}  // namespace ferry
