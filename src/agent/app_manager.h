// AppManager: the desired state of every app on the agent and its convergence.
//
// A put is validated and accepted at once (the answer is the generation the app will
// converge to); the app's public port is bound then, so the listener is held from the
// first put on, even with 0 instances, and an outgoing connection can never take it.
// Each app then converges on its own strand of the agent's io_context: apps converge
// concurrently, bounded by the io threads; instance starts, probes (prober.h) and
// supervision ticks are timers there, never a thread per app or per instance. An instance's
// end wakes its app through a pidfd on the io_context (Runtime::exit_fd), so an idle app is
// not polled; a runtime without one (containers) is polled every steady_tick_ms.
//
// Locking: `mu_` guards only the map of apps (never held across I/O). Each app's own
// mutex guards its state for readers (status); only its strand changes that state. Disk
// I/O (log housekeeping, the state file) happens with no lock held.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/handoff.h"
#include "agent/runtime.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/port_range.h"
#include "common/thread_annotations.h"
#include "core/agent_api.h"
#include "core/fault_spec.h"

namespace ferry {

class RouterIoPool;

class AcmeManager;  // agent/acme_manager.h

struct AppManagerOptions {
  std::string instance_host = "127.0.0.1";  // where instances listen (probes, router)
  std::string router_key_file;              // signs pin tokens and affinity cookies (router.h)
  PortRange instance_ports;  // ports for instance specs with port 0 (common/port_range.h)
  // The io threads every app's router runs on (router/io_pool.h); null: each router
  // makes `router_threads` of its own (tests).
  std::shared_ptr<RouterIoPool> router_io;
  int router_threads = 1;
  // Router counters of a release with no instance and no weight are left out of the
  // status this long after it lost both (a finished deployment no longer reads them).
  int64_t release_stats_keep_ms = 60'000;
  // Supervision period when nothing is in transition and every running instance's end
  // wakes its app (Runtime::exit_fd: a pidfd on the io_context), so nothing is polled:
  // only log housekeeping and the counters' window are due then.
  int64_t idle_tick_ms = 30'000;
  int64_t steady_tick_ms = 1000;  // … when an instance's end must be polled (no exit_fd)
  int64_t busy_tick_ms = 25;      // … and while an instance starts, crashes or drains
  int64_t housekeeping_ms = 30'000;
  Logger* log = nullptr;
  // Certificates for apps with tls.acme (agent/acme_manager.h); it outlives the manager.
  // Null: such an app's router is refused.
  AcmeManager* acme = nullptr;
  // Called (from any thread, an app's lock held: keep it short) whenever a router was
  // bound, rebound or let go: the agent's keeper then takes the new set of listening
  // sockets (agent/keeper.h).
  std::function<void()> routers_changed;
};

class AppManager {
 public:
  // `io`, `runtime` and `clock` outlive the manager. `state_changed` is called (from any
  // thread, no lock held) whenever the state file should be written again.
  AppManager(boost::asio::io_context& io, Runtime& runtime, const Clock& clock,
             AppManagerOptions options, std::function<void()> state_changed,
             metrics::CounterFamily* probe_failures);
  ~AppManager();
  AppManager(const AppManager&) = delete;
  AppManager& operator=(const AppManager&) = delete;

  // Accepts the desired state and returns the generation the app converges to (an older
  // generation is ignored: the current one is returned). kInvalidArgument for a bad state
  // (nothing changes); kUnavailable when the app's port cannot be bound.
  Result<int64_t> put(const AppDesiredState& state);
  // kNotFound when the app is not on this agent.
  Result<int64_t> set_weights(const std::string& app, int64_t generation,
                              const std::map<std::string, int>& weights);
  Result<AppStatus> status(const std::string& app) const;
  // Drains and stops every instance, then the router; the app leaves once all stopped.
  Status remove(const std::string& app);
  std::vector<std::string> names() const;
  // app → its accepted generation (what status() reports as `generation`), for every app.
  std::map<std::string, int64_t> generations() const;
  // How many releases the app's router keeps counters for (0 without a router): bounded by
  // the releases with instances or weight and those within the analysis window.
  size_t router_counters(const std::string& app) const;

  // Game days (router/fault.h): the app's router faults, which outlive its router and end
  // by themselves. kNotFound when the app is not on this agent; kInvalidArgument for a bad
  // setting (nothing changes). clear_fault: whether an active one (of `experiment`, when
  // given) was ended.
  Status set_fault(const std::string& app, const FaultSetting& setting);
  bool clear_fault(const std::string& app, const std::string& experiment);
  Result<FaultReport> fault_report(const std::string& app) const;
  // Kills one running instance (SIGKILL; `id` empty: the first ready one) without telling
  // its supervisor, which restarts it as after a crash. Returns the instance's id;
  // kNotFound / kFailedPrecondition when there is none to kill.
  Result<std::string> kill_instance(const std::string& app, const std::string& id);

  // The state file's "apps" (env values in clear: the caller seals them).
  Json snapshot() const;
  // Restores apps from a snapshot before any put: re-adopts running instances, binds
  // routers. Returns how many instances were adopted. Throws on a malformed snapshot.
  // A router whose app and address are among `inherited` serves on that socket (taken out
  // of the list) and carries its counters on; the rest are left for the caller to close.
  int restore(const Json& apps, std::vector<HandedListener>* inherited = nullptr);

  // Hot restart (handoff.h). freeze(): put, set_weights and remove answer kUnavailable,
  // nothing is supervised (instances keep running, probes are ignored) and routers stop
  // accepting (connections wait in the backlog) while serving the ones they have. Returns
  // each router's listening socket (a duplicate the caller owns) and counters.
  std::vector<HandedListener> freeze();
  // Undoes freeze() after a failed handoff (and hold() once the successor is the agent).
  void thaw();
  // A successor before the running agent's "commit": as freeze() for changes and
  // supervision, but the routers serve (they share the listening sockets). Call before
  // restore().
  void hold() { frozen_ = true; }
  // Each router's address and counters (no socket: fd -1).
  std::vector<HandedListener> router_counts();
  // Each router's address and a duplicate of its listening socket (the caller owns it), no
  // counters; the routers go on accepting (for the agent's keeper, agent/keeper.h).
  std::vector<HandedListener> listeners();
  // Adds a previous process's counts to the router of the same app and address; returns
  // how many routers took them.
  int add_router_counts(const std::vector<HandedListener>& counts);
  bool frozen() const { return frozen_.load(); }
  // After freeze(): every router closes each connection after its current response;
  // returns once no connection is open or after `max_ms`.
  void drain(int64_t max_ms);

  // Stops probes, timers and routers; with `stop_instances` also every instance (waits
  // up to each one's stop_grace). Call once, after which only snapshot() is valid.
  void shutdown(bool stop_instances);

  struct App;

 private:
  std::shared_ptr<App> find(const std::string& name) const;
  // Every app, copied so that each can then be locked on its own (an app's lock is never
  // taken while mu_ is held). app_list() for callers that change more under mu_.
  std::vector<std::shared_ptr<App>> all_apps() const;
  std::vector<std::shared_ptr<App>> app_list() const FERRY_REQUIRES(mu_);
  uint16_t allocate_port();
  void release_port(uint16_t port);

  boost::asio::io_context& io_;
  Runtime& runtime_;
  const Clock& clock_;
  AppManagerOptions opts_;
  std::function<void()> state_changed_;
  metrics::CounterFamily* probe_failures_;

  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<App>> apps_ FERRY_GUARDED_BY(mu_);
  Mutex ports_mu_;
  std::set<uint16_t> used_ports_ FERRY_GUARDED_BY(ports_mu_);
  uint32_t next_port_ FERRY_GUARDED_BY(ports_mu_) = 0;
  bool shut_down_ FERRY_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> serial_{0};  // numbers instance slots
  std::atomic<bool> frozen_{false};  // handing over to the next agent process
};

// Names become file names (instance logs): 1-128 letters, digits, . _ - +, never "." or "..".
bool safe_name(const std::string& name);

}  // namespace ferry
