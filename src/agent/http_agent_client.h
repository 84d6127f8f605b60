// HttpAgentClient: AgentClient over the agent's HTTP API, for the control plane.
#pragma once

#include <string>

#include "common/http_client.h"
#include "core/agent_api.h"

namespace ferry {

class HttpAgentClient final : public AgentClient {
 public:
  HttpAgentClient(Endpoint endpoint, std::string token, int timeout_ms = 3000);

  Status put_app(const AppDesiredState& state) override;
  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>& weights) override;
  Result<AppStatus> app_status(const std::string& app) override;
  Status remove_app(const std::string& app) override;
  Status health();
  const Endpoint& endpoint() const { return client_.endpoint(); }

 private:
  HttpClient client_;
};

}  // namespace ferry
