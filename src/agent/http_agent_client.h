// HttpAgentClient: AgentClient over the agent's HTTP API, for the control plane: TCP for
// a remote agent, a Unix socket for the local one (unix_http.h). TCP calls go over a few
// kept-alive connections per agent (agent_connections.h: reused across calls, one deadline
// per call, an idempotent call sent again once when the agent had closed its connection).
// put_app and set_weights return once the agent accepted the state (it converges in the
// background); callers watch app_status. Thread safety: calls may come from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_connections.h"
#include "common/http_client.h"
#include "core/agent_api.h"
#include "core/agent_generations.h"
#include "core/fault_spec.h"

namespace ferry {

class HttpAgentClient final : public AgentClient, public GenerationsSource, public FaultControl {
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

  // Decides per call how to reach a TCP agent (server/agent_trust.h): a TLS context, nullptr
  // for plain HTTP, or an error, returned as the call's error with nothing sent. Replaces
  // the context given to the constructor. Set before the first call.
  using TlsSource = std::function<Result<std::shared_ptr<TlsContext>>()>;
  void set_tls_source(TlsSource source) { tls_source_ = std::move(source); }

  Status put_app(const AppDesiredState& state) override;
  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>& weights) override;
  Result<AppStatus> app_status(const std::string& app) override;
  // GET /v1/generations; kNotFound from an agent that predates it (it answers 404).
  Result<std::map<std::string, int64_t>> generations() override;
  Status remove_app(const std::string& app) override;
  Status set_fault(const std::string& app, const FaultSetting& setting) override;
  Status clear_fault(const std::string& app, const std::string& experiment) override;
  Result<FaultReport> fault_report(const std::string& app) override;
  Result<std::string> kill_instance(const std::string& app, const std::string& id) override;
  Status health() override;
  // Takes the host out of (or back into) load balancers in front of several hosts: its
  // GET /v1/ready/APP answers 503 for every app while out; the routers keep serving.
  Status set_out(bool out);
  // Adds `serials` to the agent's revocation list (PUT /v1/revoked; it only adds); returns
  // how many were new to it. kNotFound from an agent without TLS.
  Result<size_t> push_revoked(const std::vector<std::string>& serials);
  // The apps on the agent (needs the token: an answer proves the agent is ours).
  Result<std::vector<std::string>> list_apps();
  // The generation the agent answered to the last accepted put or weights (0: none yet).
  int64_t last_accepted_generation() const { return accepted_.load(); }
  // "127.0.0.1:7071" or "unix:/data/agent.sock": for health checks and logs.
  std::string address() const override;
  const Endpoint& endpoint() const { return connections_.endpoint(); }
  // Whether the last call (or the constructor's context) used TLS.
  bool tls() const { return tls_.load(); }
  // The kept-alive connections' counters (tests, benchmarks).
  AgentConnections::Counts connection_counts() const { return connections_.counts(); }
  // Closes the idle kept-alive connections (the next call connects afresh).
  void close_idle_connections() { connections_.close_idle(); }

 private:
  Result<Json> call(std::string_view method, const std::string& target, const Json* body = nullptr);

  AgentConnections connections_;
  std::shared_ptr<TlsContext> tls_ctx_;  // the constructor's context (no TlsSource)
  std::string socket_path_;              // non-empty: the Unix socket transport
  std::string token_;
  int timeout_ms_;
  std::string name_;
  std::atomic<int64_t> accepted_{0};
  std::atomic<bool> tls_{false};
  TlsSource tls_source_;
};

}  // namespace ferry
