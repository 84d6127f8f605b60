// Agent: the data plane of one host. It keeps the instances the control plane asked
// for running (start, probe, restart with backoff, drain and stop), routes each app's
// public port to its ready instances by release weight, and survives its own restart:
// desired state and instance pids are kept in a state file written atomically, and a
// new agent process re-adopts the instances that are still running.
// It implements AgentClient, so the control plane can drive an in-process agent and a
// remote one (through HttpAgentClient) the same way.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "core/agent_api.h"

namespace ferry {

struct AgentOptions {
  std::string data_dir = ".ferry/agent";    // state file and instance logs
  std::string instance_host = "127.0.0.1";  // where instances listen (probes, router)
  uint64_t max_log_bytes = 10u << 20;       // an instance log rotates past this
  int tick_ms = 20;                         // supervisor loop period
  int router_threads = 1;
  Logger* log = nullptr;
};

class Agent final : public AgentClient {
 public:
  explicit Agent(AgentOptions options);
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Loads the state file, re-adopts running instances, restarts routers, and starts
  // supervising. An error names the state file or the port that could not be bound.
  Status start();
  // Stops supervising and routing. Instances keep running (they outlive the agent)
  // unless `stop_instances`.
  void stop(bool stop_instances = false);

  Status put_app(const AppDesiredState& state) override;
  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>& weights) override;
  Result<AppStatus> app_status(const std::string& app) override;
  Status remove_app(const std::string& app) override;
  std::vector<std::string> apps() const;

  // The agent's own metrics (router requests, instances, health-check failures).
  metrics::Registry& metrics() { return metrics_; }

  // How many instances were re-adopted by start() (tests, logs).
  int adopted() const { return adopted_; }

  struct Instance;
  struct App;

 private:
  void supervise();
  void tick(int64_t now_ms);
  void tick_instance(App& app, Instance& inst, int64_t now_ms);
  void launch(App& app, Instance& inst, int64_t now_ms);
  void probe_loop(std::shared_ptr<Instance> inst);
  void update_router(App& app);
  Status ensure_router(App& app);
  void save_state();
  Status load_state();
  std::string state_path() const;
  void log_info(const std::string& msg, const Json& fields = Json::object());

  AgentOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<App>> apps_;
  std::atomic<bool> running_{false};
  std::thread supervisor_;
  bool dirty_ = false;  // state file needs writing
  int adopted_ = 0;
  int lock_fd_ = -1;          // flock on data_dir/agent.lock: one agent per data dir
  uint64_t replace_seq_ = 0;  // makes the keys of replaced instances unique
  metrics::Registry metrics_;
  metrics::CounterFamily* probe_failures_ = nullptr;
};

}  // namespace ferry
