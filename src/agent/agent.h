// Agent: the data plane of one host, wiring only. It owns the io threads (a fixed few,
// growing with cores, never with apps or instances), the Runtime that runs instances, the
// AppManager that converges every app to its desired state (app_manager.h), and the state
// file a restarted agent re-adopts its instances from (state_file.h).
// It implements AgentClient, so the control plane drives an in-process agent and a remote
// one (through HttpAgentClient) the same way.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/acme_manager.h"
#include "agent/agent_runtime.h"
#include "agent/app_manager.h"
#include "agent/handoff.h"
#include "agent/process_runtime.h"
#include "agent/state_file.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/agent_api.h"
#include "core/agent_generations.h"
#include "core/fault_spec.h"
#include "router/io_pool.h"

namespace ferry {

struct AgentOptions {
  std::string data_dir = ".ferry/agent";    // state file and instance logs (made 0700)
  std::string instance_host = "127.0.0.1";  // where instances listen (probes, router)
  PortRange instance_ports;                 // ports assigned to instances (spec port 0)
  LogPolicy logs;                           // instance log rotation and removal
  int io_threads = 0;                       // 0: one per core, 2 to 8
  int router_threads = 0;                   // shared by all routers; 0: one per core, 1 to 8
  int tick_ms = 25;                         // supervision period while instances change
  int64_t release_stats_keep_ms = 60'000;   // see AppManagerOptions
  // Seals env values in the state file (state_key_from_token); "" makes one and keeps it
  // in data_dir/state.key (0600).
  std::string state_key;
  Logger* log = nullptr;

  // Hot restart (handoff.h). With `takeover`, start() first asks the agent running on
  // data_dir for its routers' sockets (an agent that is not running: start afresh).
  bool takeover = false;
  int handoff_timeout_ms = 15'000;  // for each step of a handoff, both sides
  int drain_ms = 10'000;            // after handing over: open connections get this long to finish
  // Called on the handoff thread: a successor asks to take over (stop accepting agent API
  // calls and let the ones in progress finish), the handoff failed (serve the API again),
  // the successor serves (the process should now call stop() and exit).
  std::function<void()> on_handoff_begin;
  // A duplicate of the agent API's listening socket for the successor (-1: none; it binds
  // its own). Called on the handoff thread after on_handoff_begin.
  std::function<int()> api_listener;
  std::function<void()> on_handoff_aborted;
  std::function<void()> on_handed_over;

  // Under the agent's keeper (agent/keeper.h): the socket to it (-1: no keeper), to which
  // the agent sends its listening sockets and lock whenever they change, and what the
  // keeper held for the previous agent process (a restart after a crash: the routers'
  // listening sockets, the locked data-dir lock file, the agent API's socket; owned).
  int keeper_fd = -1;
  Handover kept;

  // Certificates of apps with tls.acme live in data_dir/acme (agent/acme_manager.h). Tests
  // set a fake wall clock (renewal) and short retries and polls.
  const Clock* acme_clock = nullptr;
  int64_t acme_retry_min_ms = 60'000;
  int acme_poll_interval_ms = 1000;
};

// How long ago this process was started (exec), in ms; -1 when /proc cannot tell. The
// start is known to the clock tick (10 ms). For the agent's start timing log.
double process_age_ms();
// The CPU time (user + system) this process has used, in ms; -1 when unknown.
double process_cpu_ms();

class Agent final : public AgentClient, public GenerationsSource, public FaultControl {
 public:
  explicit Agent(AgentOptions options);
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Takes the data dir (one agent per data dir), loads the state file, re-adopts running
  // instances, binds routers and starts supervising. An error names the file or port.
  Status start();
  // Stops supervising and routing and writes the state file a last time. Instances keep
  // running (they outlive the agent) unless `stop_instances`. After a handoff: drains the
  // routers' open connections (up to drain_ms), writes nothing, stops no instance.
  void stop(bool stop_instances = false);
  // A successor (takeover): tells the previous process we can serve and waits for its
  // decision (handoff.h). Ok: this agent now supervises and the caller serves the agent API
  // (on take_api_listener()). An error: the previous process serves on; this one only
  // drains what its routers accepted: call stop() and exit (no instance is touched and the
  // state file is not written).
  Status confirm_takeover();
  // The agent API's listening socket the previous process handed over (-1: none); the
  // caller owns it.
  int take_api_listener() { return std::exchange(api_fd_, -1); }
  // Under a keeper: send it the listening sockets again (the agent API now serves).
  void keeper_changed();
  // Whether this agent handed over to a successor (it should stop and exit).
  bool handed_over() const { return handed_over_.load(); }
  // Whether start() took over from a running agent (rather than starting afresh), and how
  // many listening sockets it received / serves on.
  bool took_over() const { return took_over_; }
  int inherited_listeners() const { return inherited_listeners_; }

  // Accepts desired state at once; the answer is the generation the app converges to.
  Result<int64_t> accept(const AppDesiredState& state);
  Result<int64_t> accept_weights(const std::string& app, int64_t generation,
                                 const std::map<std::string, int>& weights);

  Status put_app(const AppDesiredState& state) override;
  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>& weights) override;
  Result<AppStatus> app_status(const std::string& app) override;
  Result<std::map<std::string, int64_t>> generations() override;
  Status remove_app(const std::string& app) override;
  std::vector<std::string> apps() const;
  // Game days (AppManager::set_fault, kill_instance).
  Status set_fault(const std::string& app, const FaultSetting& setting) override;
  Status clear_fault(const std::string& app, const std::string& experiment) override;
  Result<FaultReport> fault_report(const std::string& app) override;
  Result<std::string> kill_instance(const std::string& app, const std::string& id) override;

  // The certificates of apps with tls.acme.
  AcmeManager& acme() { return *acme_; }
  // The agent's own metrics (router requests, instances, health-check failures).
  metrics::Registry& metrics() { return metrics_; }
  // How many instances were re-adopted by start() (tests, logs).
  int adopted() const { return adopted_; }
  // Threads the agent runs: io threads, router io threads and the state writer (whatever
  // the number of apps and instances).
  int threads() const { return static_cast<int>(io_threads_.size() + router_io_->size()) + 1; }

 private:
  void request_save();
  void save_loop();
  void start_saver();
  void stop_saver();
  Result<std::string> state_key();
  Status take_lock(int wait_ms);
  void write_pid_file();
  Result<Handover> begin_handoff(bool shares_lock);
  void start_handoff_server();
  void abort_handoff(const std::string& why);
  Status take_counts(int pid, std::vector<HandedListener> counts);
  void send_drained_counts();
  void start_keeper_sync();
  void keeper_loop();

  AgentOptions opts_;
  SystemClock clock_;
  metrics::Registry metrics_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::shared_ptr<RouterIoPool> router_io_;  // every app's router runs on these threads
  std::unique_ptr<AgentRuntime> runtime_;    // processes, and containers for run.image
  std::unique_ptr<AcmeManager> acme_;        // before manager_: its routers' certificates
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

  std::unique_ptr<HandoffServer> handoff_;
  std::optional<HandoffClient> predecessor_;  // until confirm_takeover()
  int predecessor_pid_ = 0;                   // it sends its last counts once drained
  std::atomic<bool> counts_taken_{false};
  int api_fd_ = -1;                            // handed over, until take_api_listener()
  std::vector<HandedListener> handed_counts_;  // the counters as handed over (no fds)
  std::atomic<bool> handed_over_{false};
  bool took_over_ = false;
  int inherited_listeners_ = 0;

  // Sends the keeper (opts_.keeper_fd) the listening sockets whenever they change.
  std::mutex keeper_mu_;
  std::condition_variable keeper_cv_;
  bool keeper_dirty_ = true;  // guarded by keeper_mu_
  bool keeper_stop_ = false;  // guarded by keeper_mu_
  // Held while the set is gathered and sent (after keeper_mu_ never before it; app locks
  // are taken inside it).
  std::mutex keeper_send_mu_;
  bool keeper_paused_ = false;  // guarded by keeper_send_mu_: a handoff is under way or done
  std::thread keeper_sync_;
};

}  // namespace ferry
