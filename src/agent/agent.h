// Agent: the data plane of one host, wiring only. It owns the io threads (a fixed few,
// growing with cores, never with apps or instances), the Runtime that runs instances, the
// AppManager that converges every app to its desired state (app_manager.h), and the state
// file a restarted agent re-adopts its instances from (state_file.h).
// It implements AgentClient, so the control plane drives an in-process agent and a remote
// one (through HttpAgentClient) the same way.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_runtime.h"
#include "agent/app_manager.h"
#include "agent/state_file.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/agent_api.h"

namespace ferry {

struct AgentOptions {
  std::string data_dir = ".ferry/agent";    // state file and instance logs (made 0700)
  std::string instance_host = "127.0.0.1";  // where instances listen (probes, router)
  PortRange instance_ports;                 // ports assigned to instances (spec port 0)
  LogPolicy logs;                           // instance log rotation and removal
  int io_threads = 0;                       // 0: one per core, 2 to 8
  int router_threads = 1;
  int tick_ms = 25;                        // supervision period while instances change
  int64_t release_stats_keep_ms = 60'000;  // see AppManagerOptions
  // Seals env values in the state file (state_key_from_token); "" makes one and keeps it
  // in data_dir/state.key (0600).
  std::string state_key;
  Logger* log = nullptr;
};

class Agent final : public AgentClient {
 public:
  explicit Agent(AgentOptions options);
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Takes the data dir (one agent per data dir), loads the state file, re-adopts running
  // instances, binds routers and starts supervising. An error names the file or port.
  Status start();
  // Stops supervising and routing and writes the state file a last time. Instances keep
  // running (they outlive the agent) unless `stop_instances`.
  void stop(bool stop_instances = false);

  // Accepts desired state at once; the answer is the generation the app converges to.
  Result<int64_t> accept(const AppDesiredState& state);
  Result<int64_t> accept_weights(const std::string& app, int64_t generation,
                                 const std::map<std::string, int>& weights);

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
  // Threads the agent runs (io threads and the state writer; routers have their own).
  int threads() const { return static_cast<int>(io_threads_.size()) + 1; }

 private:
  void request_save();
  void save_loop();
  Result<std::string> state_key();

  AgentOptions opts_;
  SystemClock clock_;
  metrics::Registry metrics_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::unique_ptr<AgentRuntime> runtime_;  // processes, and containers for run.image
  std::unique_ptr<AppManager> manager_;
  std::unique_ptr<StateFile> state_;
  int adopted_ = 0;
  bool save_on_stop_ = true;  // false when the state file could not be read: never overwrite it
  int lock_fd_ = -1;          // flock on data_dir/agent.lock: one agent per data dir

  std::mutex save_mu_;
  std::condition_variable save_cv_;
  bool save_requested_ = false;  // guarded by save_mu_
  bool saver_stop_ = false;      // guarded by save_mu_
  std::thread saver_;
};

}  // namespace ferry
