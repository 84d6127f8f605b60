#include "agent/http_agent_client.h"

#include "common/http_types.h"

namespace ferry {

HttpAgentClient::HttpAgentClient(Endpoint endpoint, std::string token, int timeout_ms)
    : client_(std::move(endpoint), HttpClientOptions{timeout_ms, 16u << 20}) {
  client_.set_header("Authorization", "Bearer " + token);
}

Status HttpAgentClient::put_app(const AppDesiredState& state) {
  Json body;
  to_json(body, state);
  auto r = client_.call("PUT", "/v1/apps/" + url_encode(state.app), &body);
  return r.ok() ? Status::Ok() : r.status().with_context("agent " + client_.endpoint().to_string());
}

Status HttpAgentClient::set_weights(const std::string& app, int64_t generation,
                                    const std::map<std::string, int>& weights) {
  Json body{{"generation", generation}, {"weights", weights}};
  auto r = client_.call("PUT", "/v1/apps/" + url_encode(app) + "/weights", &body);
  return r.ok() ? Status::Ok() : r.status().with_context("agent " + client_.endpoint().to_string());
}

Result<AppStatus> HttpAgentClient::app_status(const std::string& app) {
  auto r = client_.call("GET", "/v1/apps/" + url_encode(app));
  if (!r.ok()) return r.status().with_context("agent " + client_.endpoint().to_string());
  AppStatus s;
  try {
    from_json(*r, s);
  } catch (const std::exception& e) {
    return internal_error(std::string("agent answered a malformed status: ") + e.what());
  }
  return s;
}

Status HttpAgentClient::remove_app(const std::string& app) {
  auto r = client_.call("DELETE", "/v1/apps/" + url_encode(app));
  return r.ok() ? Status::Ok() : r.status().with_context("agent " + client_.endpoint().to_string());
}

Status HttpAgentClient::health() {
  auto r = client_.call("GET", "/v1/health");
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace ferry
