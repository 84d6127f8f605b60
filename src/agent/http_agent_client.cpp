#include "agent/http_agent_client.h"

#include "agent/unix_http.h"
#include "common/http_types.h"

namespace ferry {

namespace {
constexpr size_t kMaxAnswer = 16u << 20;
}

HttpAgentClient::HttpAgentClient(Endpoint endpoint, std::string token, int timeout_ms,
                                 std::string name, std::shared_ptr<TlsContext> tls)
    : connections_(std::move(endpoint), AgentConnectionOptions{timeout_ms, kMaxAnswer}),
      tls_ctx_(tls),
      token_(std::move(token)),
      timeout_ms_(timeout_ms),
      name_(std::move(name)),
      tls_(tls != nullptr) {}

HttpAgentClient::HttpAgentClient(UnixSocket socket, std::string token, int timeout_ms,
                                 std::string name)
    : HttpAgentClient(Endpoint{"unix:" + socket.path, 0}, std::move(token), timeout_ms,
                      std::move(name)) {
  socket_path_ = std::move(socket.path);
}

std::string HttpAgentClient::address() const {
  return socket_path_.empty() ? connections_.endpoint().to_string() : "unix:" + socket_path_;
}

Result<Json> HttpAgentClient::call(std::string_view method, const std::string& target,
                                   const Json* body) {
  const std::string who =
      name_.empty() ? "agent " + address() : "agent " + name_ + " (" + address() + ")";
  const std::string payload = body ? body->dump() : std::string();
  Result<HttpResponse> resp = internal_error("no transport");
  if (!socket_path_.empty()) {
    resp = unix_http_request(socket_path_, method, target, {{"Authorization", "Bearer " + token_}},
                             payload, timeout_ms_, kMaxAnswer);
  } else {
    std::shared_ptr<TlsContext> tls = tls_ctx_;
    if (tls_source_) {
      // Refused (a remote agent that may not be called in clear): nothing is sent.
      auto source = tls_source_();
      if (!source.ok()) return source.status();
      tls = std::move(*source);
      tls_ = tls != nullptr;
    }
    resp =
        connections_.request(tls, method, target, {{"Authorization", "Bearer " + token_}}, payload);
  }
  // No answer: kUnavailable or kDeadlineExceeded (is_unreachable), with who and why.
  if (!resp.ok()) return resp.status().with_context(who);
  Json j;
  if (!resp->body.empty()) {
    auto parsed = parse_json(resp->body, "response from " + who);
    if (!parsed.ok()) {
      if (resp->status < 300) return parsed.status();
      j = Json::object();
    } else {
      j = std::move(*parsed);
    }
  }
  if (resp->status >= 300) {
    Status s = status_from_json(j);
    Code code = s.ok() ? Code::kInternal : s.code();
    // The agent answered, so it is reachable: its refusal (a port in use, say) must not
    // read as a partition.
    if (code == Code::kUnavailable || code == Code::kDeadlineExceeded)
      code = Code::kFailedPrecondition;
    return Status(code, who + " answered HTTP " + std::to_string(resp->status) + ": " +
                            (s.ok() ? resp->body.substr(0, 200) : s.message()));
  }
  return j;
}

Status HttpAgentClient::put_app(const AppDesiredState& state) {
  Json body;
  to_json(body, state);
  auto r = call("PUT", "/v1/apps/" + url_encode(state.app), &body);
  if (!r.ok()) return r.status();
  accepted_ = r->value("generation", state.generation);
  return Status::Ok();
}

Status HttpAgentClient::set_weights(const std::string& app, int64_t generation,
                                    const std::map<std::string, int>& weights) {
  Json body{{"generation", generation}, {"weights", weights}};
  auto r = call("PUT", "/v1/apps/" + url_encode(app) + "/weights", &body);
  if (!r.ok()) return r.status();
  accepted_ = r->value("generation", generation);
  return Status::Ok();
}

Result<AppStatus> HttpAgentClient::app_status(const std::string& app) {
  auto r = call("GET", "/v1/apps/" + url_encode(app));
  if (!r.ok()) return r.status();
  AppStatus s;
  try {
    from_json(*r, s);
  } catch (const std::exception& e) {
    return internal_error(std::string("agent answered a malformed status: ") + e.what());
  }
  return s;
}

Result<std::map<std::string, int64_t>> HttpAgentClient::generations() {
  auto r = call("GET", "/v1/generations");
  if (!r.ok()) return r.status();
  try {
    return r->at("apps").get<std::map<std::string, int64_t>>();
  } catch (const std::exception& e) {
    return internal_error(std::string("agent answered malformed generations: ") + e.what());
  }
}

Status HttpAgentClient::remove_app(const std::string& app) {
  auto r = call("DELETE", "/v1/apps/" + url_encode(app));
  return r.ok() ? Status::Ok() : r.status();
}

Status HttpAgentClient::set_fault(const std::string& app, const FaultSetting& setting) {
  Json body;
  to_json(body, setting);
  auto r = call("PUT", "/v1/apps/" + url_encode(app) + "/fault", &body);
  return r.ok() ? Status::Ok() : r.status();
}

Status HttpAgentClient::clear_fault(const std::string& app, const std::string& experiment) {
  auto r =
      call("DELETE", "/v1/apps/" + url_encode(app) + "/fault?experiment=" + url_encode(experiment));
  return r.ok() ? Status::Ok() : r.status();
}

Result<FaultReport> HttpAgentClient::fault_report(const std::string& app) {
  auto r = call("GET", "/v1/apps/" + url_encode(app) + "/fault");
  if (!r.ok()) return r.status();
  FaultReport out;
  try {
    from_json(*r, out);
  } catch (const std::exception& e) {
    return internal_error(std::string("agent answered a malformed fault report: ") + e.what());
  }
  return out;
}

Result<std::string> HttpAgentClient::kill_instance(const std::string& app, const std::string& id) {
  Json body{{"instance", id}};
  auto r = call("POST", "/v1/apps/" + url_encode(app) + "/kill", &body);
  if (!r.ok()) return r.status();
  if (!r->contains("instance") || !(*r)["instance"].is_string())
    return internal_error("agent answered a kill without the instance's id");
  return (*r)["instance"].get<std::string>();
}

Result<std::vector<std::string>> HttpAgentClient::list_apps() {
  auto r = call("GET", "/v1/apps");
  if (!r.ok()) return r.status();
  try {
    return r->at("apps").get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    return internal_error(std::string("agent answered a malformed app list: ") + e.what());
  }
}

Status HttpAgentClient::set_out(bool out) {
  Json body{{"out", out}};
  auto r = call("PUT", "/v1/ready", &body);
  return r.ok() ? Status::Ok() : r.status();
}

Result<size_t> HttpAgentClient::push_revoked(const std::vector<std::string>& serials) {
  Json body{{"serials", serials}};
  auto r = call("PUT", "/v1/revoked", &body);
  if (!r.ok()) return r.status();
  if (!r->contains("added") || !(*r)["added"].is_number_unsigned())
    return internal_error("agent answered a revocation push without 'added'");
  return (*r)["added"].get<size_t>();
}

Status HttpAgentClient::health() {
  auto r = call("GET", "/v1/health");
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace ferry
