// HttpAgentClient: AgentClient over the agent's HTTP API, for the control plane: TCP for
// a remote agent, a Unix socket for the local one (unix_http.h).
// put_app and set_weights return once the agent accepted the state (it converges in the
// background); callers watch app_status. Thread safety: calls may come from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "core/agent_api.h"
#include "core/fault_spec.h"

namespace ferry {

class HttpAgentClient final : public AgentClient, public FaultControl {
 public:
  // `timeout_ms` bounds every call (connect, send, answer): an unreachable agent costs a
  // caller at most that long. `name`: the agent's name in ferry.yaml ("" = its address).
  // `tls`: call the agent with mutual TLS (a client-role context pinned to its name).
  HttpAgentClient(Endpoint endpoint, std::string token, int timeout_ms = 3000,
                  std::string name = "", std::shared_ptr<TlsContext> tls = nullptr);
  // The local agent on a Unix socket.
  struct UnixSocket {
    std::string path;
  };
  HttpAgentClient(UnixSocket socket, std::string token, int timeout_ms = 3000,
                  std::string name = "");

  std::string name() const override { return name_.empty() ? address() : name_; }

  Status put_app(const AppDesiredState& state) override;
  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>& weights) override;
  Result<AppStatus> app_status(const std::string& app) override;
  Status remove_app(const std::string& app) override;
  Status set_fault(const std::string& app, const FaultSetting& setting) override;
  Status clear_fault(const std::string& app, const std::string& experiment) override;
  Result<FaultReport> fault_report(const std::string& app) override;
  Result<std::string> kill_instance(const std::string& app, const std::string& id) override;
  Status health() override;
  // The apps on the agent (needs the token: an answer proves the agent is ours).
  Result<std::vector<std::string>> list_apps();
  // The generation the agent answered to the last accepted put or weights (0: none yet).
  int64_t last_accepted_generation() const { return accepted_.load(); }
  // "127.0.0.1:7071" or "unix:/data/agent.sock": for health checks and logs.
  std::string address() const override;
  const Endpoint& endpoint() const { return client_.endpoint(); }
  bool tls() const { return tls_; }

 private:
  Result<Json> call(std::string_view method, const std::string& target, const Json* body = nullptr);

  HttpClient client_;
  std::string socket_path_;  // non-empty: the Unix socket transport
  std::string token_;
  int timeout_ms_;
  std::string name_;
  std::atomic<int64_t> accepted_{0};
  bool tls_ = false;
};

}  // namespace ferry
