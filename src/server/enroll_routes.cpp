// Enrollment of remote agents for mutual TLS (server/enrollment.h, docs/operations.md):
//   POST /api/v1/agents/{name}/enroll   admin: a one-time join token for the agent
//   POST /api/v1/agents/{name}/revoke   admin: revokes the agent's certificates (name
//                                       "ferry-server": the server's own, replaced at
//                                       once) and pushes the list to every agent
//   POST /api/v1/agents/{name}/out|in   admin: takes the host out of load balancers in
//                                       front of several hosts (its readiness answers 503)
//                                       or back in; the routers keep serving
//   POST /enroll/v1/agents/{name}/join  the agent: its CSR and the join token (no API
//                                       token: the join token is the credential) → its
//                                       certificate and the CA
// The CA lives in DATA_DIR/tls and is opened on the first call. Tokens never reach the
// audit, a log or an error message.
#include <mutex>

#include "agent/http_agent_client.h"
#include "common/crypto.h"
#include "server/control_plane.h"
#include "server/enrollment.h"
#include "server/revocation_push.h"

namespace ferry {

namespace {

struct EnrollHolder {
  std::mutex mu;
  std::unique_ptr<Enrollment> enrollment;
};

Result<Enrollment*> enrollment_of(EnrollHolder& h, ControlPlane& cp) {
  std::lock_guard lk(h.mu);
  if (!h.enrollment) {
    auto e = Enrollment::open(cp.config()->server.data_dir + "/tls", cp.clock());
    if (!e.ok()) return e.status();
    h.enrollment = std::move(*e);
  }
  return h.enrollment.get();
}

std::string actor_of(const HttpRequest& req) {
  auto it = req.attrs.find("actor");
  return it == req.attrs.end() ? std::string("anonymous") : it->second;
}

}  // namespace

void add_enroll_routes(HttpServer& http, ControlPlane& cp) {
  auto holder = std::make_shared<EnrollHolder>();

  http.route("POST", "/api/v1/agents/{name}/enroll", [&cp, holder](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin)) return *denied;
    auto body = object_body(req, true);
    if (!body.ok()) return HttpResponse::error(body.status());
    const Json& b = *body;
    int64_t ttl_s = 3600;
    if (b.contains("ttl_s")) {
      if (!b["ttl_s"].is_number_integer())
        return HttpResponse::error(invalid_argument("ttl_s must be an integer of seconds"));
      ttl_s = b["ttl_s"].get<int64_t>();
    }
    auto e = enrollment_of(*holder, cp);
    if (!e.ok()) return HttpResponse::error(e.status());
    auto token = (*e)->issue_token(req.param("name"), ttl_s * 1000);
    if (!token.ok()) return HttpResponse::error(token.status());
    cp.audit(actor_of(req), "agent.enroll", "", "", "", req.remote_addr,
             Json{{"agent", req.param("name")}, {"ttl_s", ttl_s}});
    return HttpResponse::json(Json{{"agent", req.param("name")},
                                   {"token", *token},
                                   {"expires_in_s", ttl_s},
                                   {"ca_sha256", sha256_hex((*e)->ca_pem())}});
  });

  http.route("POST", "/api/v1/agents/{name}/revoke", [&cp, holder](HttpRequest& req) {
    if (auto denied = require(req, Role::kAdmin)) return *denied;
    auto e = enrollment_of(*holder, cp);
    if (!e.ok()) return HttpResponse::error(e.status());
    auto serials = (*e)->revoke(req.param("name"));
    if (!serials.ok()) return HttpResponse::error(serials.status());
    cp.audit(actor_of(req), "agent.revoke", "", "", "", req.remote_addr,
             Json{{"agent", req.param("name")}, {"serials", *serials}});
    // Pushed to every enrolled agent now; the ones that cannot be reached get it when they
    // can (server/revocation_push.h) and are named here.
    std::vector<std::string> behind;
    if (auto* push = cp.revocations()) behind = push->push_once();
    return HttpResponse::json(
        Json{{"agent", req.param("name")}, {"revoked", *serials}, {"agents_behind", behind}});
  });

  for (const bool out : {true, false}) {
    http.route("POST", std::string("/api/v1/agents/{name}/") + (out ? "out" : "in"),
               [&cp, out](HttpRequest& req) {
                 if (auto denied = require(req, Role::kAdmin)) return *denied;
                 const std::string name = req.param("name");
                 HttpAgentClient* agent = nullptr;
                 for (auto& [n, c] : cp.agent_clients())
                   if (n == name) agent = c;
                 if (!agent)
                   return HttpResponse::error(
                       not_found("agent '" + name.substr(0, 64) + "' is not in ferry.yaml"));
                 if (Status s = agent->set_out(out); !s.ok()) return HttpResponse::error(s);
                 cp.audit(actor_of(req), out ? "agent.out" : "agent.in", "", "", "",
                          req.remote_addr, Json{{"agent", name}});
                 return HttpResponse::json(Json{{"agent", name}, {"out", out}});
               });
  }

  http.route("POST", "/enroll/v1/agents/{name}/join", [&cp, holder](HttpRequest& req) {
    auto body = object_body(req);
    if (!body.ok()) return HttpResponse::error(body.status());
    if (!(*body)["token"].is_string() || !(*body)["csr"].is_string())
      return HttpResponse::error(invalid_argument("join needs 'token' and 'csr' strings"));
    auto e = enrollment_of(*holder, cp);
    if (!e.ok()) return HttpResponse::error(e.status());
    auto cert = (*e)->redeem(req.param("name"), (*body)["token"].get<std::string>(),
                             (*body)["csr"].get<std::string>());
    if (!cert.ok()) return HttpResponse::error(cert.status());
    auto serial = cert_serial(*cert);
    cp.audit("agent:" + req.param("name"), "agent.joined", "", "", "", req.remote_addr,
             Json{{"agent", req.param("name")}, {"serial", serial.ok() ? *serial : ""}});
    return HttpResponse::json(
        Json{{"agent", req.param("name")}, {"cert", *cert}, {"ca", (*e)->ca_pem()}});
  });
}

}  // namespace ferry
