#include "agent/agent.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/keeper.h"
#include "agent/process.h"
#include "agent/status_metrics.h"
#include "common/crypto.h"
#include "core/slo_paths.h"

namespace ferry {

namespace fs = std::filesystem;

Agent::Agent(AgentOptions options) : opts_(std::move(options)) {
  auto pf = metrics_.counter("ferry_health_check_failures_total", "Failed probes of an instance",
                             {"app", "instance", "probe"});
  // Router and instance families over this agent's apps (label app = "<app>.<env>").
  register_status_metrics(metrics_, {"app"}, [this] {
    std::vector<StatusRow> out;
    for (const auto& name : apps())
      if (auto s = app_status(name); s.ok()) out.push_back({{name}, std::move(*s)});
    return out;
  });
  runtime_ = std::make_unique<AgentRuntime>(opts_.data_dir, opts_.logs);
  AppManagerOptions mo;
  mo.instance_host = opts_.instance_host;
  mo.instance_ports = opts_.instance_ports;
  router_io_ = std::make_shared<RouterIoPool>(opts_.router_threads);
  mo.router_io = router_io_;
  mo.router_key_file = opts_.data_dir + "/router.key";
  mo.busy_tick_ms = std::max(1, opts_.tick_ms);
  mo.release_stats_keep_ms = opts_.release_stats_keep_ms;
  mo.log = opts_.log;
  mo.routers_changed = [this] { keeper_changed(); };
  AcmeManagerOptions ao;
  ao.dir = opts_.data_dir + "/acme";
  ao.clock = opts_.acme_clock;
  ao.log = opts_.log;
  ao.retry_min_ms = opts_.acme_retry_min_ms;
  ao.poll_interval_ms = opts_.acme_poll_interval_ms;
  acme_ = std::make_unique<AcmeManager>(ao);
  mo.acme = acme_.get();
  manager_ = std::make_unique<AppManager>(
      io_, *runtime_, clock_, mo, [this] { request_save(); }, pf.ok() ? *pf : nullptr);
}

Agent::~Agent() {
  stop();
  if (api_fd_ >= 0) close(api_fd_);
  close_all(opts_.kept.listeners);
  for (int fd : {opts_.kept.lock_fd, opts_.kept.api_fd})
    if (fd >= 0) close(fd);
}

void Agent::keeper_changed() {
  std::lock_guard lk(keeper_mu_);
  keeper_dirty_ = true;
  keeper_cv_.notify_one();
}

void Agent::start_keeper_sync() {
  if (opts_.keeper_fd < 0 || keeper_sync_.joinable()) return;
  keeper_sync_ = std::thread([this] { keeper_loop(); });
}

// The keeper's thread: whenever a router was bound or let go (or the API serves), the
// keeper gets the whole set again; it replaces what it held.
void Agent::keeper_loop() {
  std::unique_lock lk(keeper_mu_);
  for (;;) {
    keeper_cv_.wait(lk, [this] { return keeper_stop_ || keeper_dirty_; });
    if (keeper_stop_) return;
    keeper_dirty_ = false;
    lk.unlock();
    {
      std::lock_guard send(keeper_send_mu_);
      if (!keeper_paused_) {  // a handoff: the next process's keeper takes them
        auto listeners = manager_->listeners();
        const int api = opts_.api_listener ? opts_.api_listener() : -1;
        Status s = send_kept(opts_.keeper_fd, listeners, lock_fd_, api);
        close_all(listeners);
        if (api >= 0) close(api);
        if (!s.ok() && opts_.log)
          opts_.log->warn("the keeper did not get the listening sockets", {{"error", s.message()}});
      }
    }
    lk.lock();
  }
}

double process_age_ms() {
  // Field 22 of /proc/self/stat: when the process started, in clock ticks since boot.
  const std::vector<std::string> f = proc_stat_fields(getpid());
  if (f.size() < 20) return -1;
  timespec now{};
  clock_gettime(CLOCK_BOOTTIME, &now);
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double started_ms = std::stod(f[19]) * 1000.0 / hz;
  return static_cast<double>(now.tv_sec) * 1000.0 + static_cast<double>(now.tv_nsec) / 1e6 -
         started_ms;
}

double process_cpu_ms() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

Result<std::string> Agent::state_key() {
  if (!opts_.state_key.empty()) {
    if (opts_.state_key.size() != 32) return invalid_argument("the state key must be 32 bytes");
    return opts_.state_key;
  }
  const std::string path = opts_.data_dir + "/state.key";
  std::ifstream f(path);
  std::string hex;
  if (f >> hex) {
    std::string key = from_hex(hex);
    if (key.size() != 32) return invalid_argument(path + " does not hold a 32-byte hex key");
    return key;
  }
  const std::string key = random_bytes(32);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot create " + path);
  const std::string line = to_hex(key) + "\n";
  const bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!ok) return internal_error("cannot write " + path);
  return key;
}

Status Agent::take_lock(int wait_ms) {
  const std::string lock_path = opts_.data_dir + "/agent.lock";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return internal_error("cannot open " + lock_path);
  // An older predecessor (no "lock" feature, handoff.h) lets go of the lock just before it
  // sends its sockets: wait for it.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() >= until) {
      close(lock_fd_);
      lock_fd_ = -1;
      return failed_precondition("another agent is running on data dir " + opts_.data_dir +
                                 " (it holds " + lock_path +
                                 "); to replace it without dropping requests, start this one "
                                 "with --takeover or send the running one SIGHUP");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Status::Ok();
}

// data_dir/agent.pid: whoever restarts the agent (the server's local agent watchdog)
// watches this process through it and sees it end at once.
void Agent::write_pid_file() {
  const std::string path = opts_.data_dir + "/agent.pid";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << getpid() << "\n";
    if (!f) return;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

Status Agent::start() {
  // Where a (re)start spends its time, for the log: a crashed agent's routers are back
  // only once this returns (docs/agent.md, "Restart after a crash").
  const auto t0 = std::chrono::steady_clock::now();
  const double age_at_start = process_age_ms();
  Json stages = Json::object();
  auto stage = [&](const char* name) {
    stages[name] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  std::error_code ec;
  fs::create_directories(opts_.data_dir, ec);
  if (ec)
    return invalid_argument("cannot create agent data dir " + opts_.data_dir + ": " + ec.message());
  fs::permissions(opts_.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  const std::string handoff_path = opts_.data_dir + "/handoff.sock";
  if (opts_.takeover) {
    auto from = HandoffClient::take_over(handoff_path, opts_.handoff_timeout_ms);
    if (from.ok()) {
      predecessor_.emplace(std::move(*from));
      took_over_ = true;
    } else if (from.status().code() != Code::kNotFound) {
      return from.status();
    } else if (opts_.log) {
      opts_.log->info("no running agent to take over from: starting afresh",
                      {{"socket", handoff_path}});
    }
    stage("handoff_ms");
  }
  if (predecessor_ && predecessor_->lock_fd() >= 0) {
    // The running agent's own locked file: the data dir was never unlocked in between.
    lock_fd_ = std::exchange(predecessor_->lock_fd(), -1);
    if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
      return failed_precondition("the lock handed over by the running agent is not " +
                                 opts_.data_dir + "/agent.lock");
    predecessor_pid_ = predecessor_->predecessor_pid();
    api_fd_ = std::exchange(predecessor_->api_fd(), -1);
  } else if (!predecessor_ && opts_.kept.lock_fd >= 0) {
    // Restarted by the keeper after a crash: its copy of the locked file, held all along.
    lock_fd_ = std::exchange(opts_.kept.lock_fd, -1);
    if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
      return failed_precondition("the lock kept by the agent's keeper is not " + opts_.data_dir +
                                 "/agent.lock");
    api_fd_ = std::exchange(opts_.kept.api_fd, -1);
  } else if (Status s = take_lock(took_over_ ? opts_.handoff_timeout_ms : 100); !s.ok()) {
    // Two agents on one data dir would both run the instances and race on the state file.
    return s;
  }
  stage("lock_ms");
  write_pid_file();
  auto key = state_key();
  if (!key.ok()) return key.status();
  state_ = std::make_unique<StateFile>(opts_.data_dir + "/agent-state.json", *key);
  auto loaded = state_->load();
  if (!loaded.ok()) return loaded.status();
  stage("state_read_ms");
  // A successor neither supervises nor writes the state file before the running agent's
  // "commit" (confirm_takeover); its routers serve at once.
  if (predecessor_) manager_->hold();
  if (Status s = acme_->start(); !s.ok()) return s;
  work_ =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor());
  int n = opts_.io_threads;
  if (n <= 0) n = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 2, 8);
  for (int i = 0; i < n; ++i) io_threads_.emplace_back([this] { io_.run(); });
  if (!predecessor_) start_saver();
  if (*loaded) {
    // Handed over by a running agent, or kept by the keeper across a crash.
    std::vector<HandedListener>* inherited = predecessor_ ? &predecessor_->listeners()
                                             : !opts_.kept.listeners.empty() ? &opts_.kept.listeners
                                                                             : nullptr;
    const size_t offered = inherited ? inherited->size() : 0;
    try {
      adopted_ = manager_->restore(**loaded, inherited);
    } catch (const std::exception& e) {
      save_on_stop_ = false;
      stop();
      return invalid_argument("agent state file " + state_->path() + " is malformed: " + e.what());
    }
    if (inherited) {
      inherited_listeners_ = static_cast<int>(
          offered - std::count_if(inherited->begin(), inherited->end(),
                                  [](const HandedListener& l) { return l.fd >= 0; }));
      close_all(*inherited);  // sockets of apps the state no longer has
    }
    stage("routers_serving_ms");
    if (opts_.log)
      opts_.log->info("agent state loaded", {{"apps", manager_->names().size()},
                                             {"adopted", adopted_},
                                             {"inherited_sockets", inherited_listeners_}});
  }
  close_all(opts_.kept.listeners);  // no state file: nothing to serve on them
  opts_.kept.listeners.clear();
  if (!predecessor_) start_keeper_sync();
  if (const std::string strays = runtime_->remove_strays(); !strays.empty() && opts_.log)
    opts_.log->warn(strays, {});
  // A successor binds the handoff socket once it is the agent: until then the running
  // agent's stays where the next SIGHUP finds it.
  if (!predecessor_) start_handoff_server();
  stage("started_ms");
  if (opts_.log)
    opts_.log->info("agent start timing", {{"process_age_at_start_ms", age_at_start},
                                           {"stages", stages},
                                           {"cpu_ms", process_cpu_ms()}});
  return Status::Ok();
}

void Agent::start_handoff_server() {
  HandoffServer::Hooks hooks;
  hooks.begin = [this](bool shares_lock) { return begin_handoff(shares_lock); };
  hooks.abort = [this](const std::string& why) { abort_handoff(why); };
  hooks.done = [this] {
    handed_over_ = true;
    if (opts_.log) opts_.log->info("handed over to the next agent process; draining", {});
    if (opts_.on_handed_over) opts_.on_handed_over();
  };
  hooks.counts = [this](int pid, std::vector<HandedListener> counts) {
    return take_counts(pid, std::move(counts));
  };
  handoff_ = std::make_unique<HandoffServer>(opts_.data_dir + "/handoff.sock", std::move(hooks),
                                             opts_.handoff_timeout_ms);
  if (Status s = handoff_->start(); !s.ok() && opts_.log)
    opts_.log->warn("hot restart unavailable", {{"error", s.message()}});
}

Status Agent::confirm_takeover() {
  if (!predecessor_) return Status::Ok();
  Status s = predecessor_->ready(opts_.handoff_timeout_ms);
  predecessor_.reset();
  if (!s.ok()) {
    // The previous process serves on: this one leaves everything as it is.
    if (opts_.log)
      opts_.log->warn("the running agent did not hand over; leaving", {{"error", s.message()}});
    save_on_stop_ = false;
    handed_over_ = true;  // stop() drains what the routers accepted, writes and stops nothing
    return s;
  }
  start_saver();
  manager_->thaw();
  request_save();
  start_handoff_server();
  start_keeper_sync();  // this process's keeper holds the sockets from now on
  return Status::Ok();
}

Status Agent::take_counts(int pid, std::vector<HandedListener> counts) {
  if (pid <= 0 || pid != predecessor_pid_)
    return permission_denied("counts are taken only from the previous agent process");
  if (counts_taken_.exchange(true)) return failed_precondition("counts were taken already");
  const int taken = manager_->add_router_counts(counts);
  if (opts_.log)
    opts_.log->info("the previous agent process's last counts added", {{"routers", taken}});
  return Status::Ok();
}

// After draining (stop()): what the routers counted since they were handed over goes to
// the successor, so no request served while draining is missing from its counters.
void Agent::send_drained_counts() {
  std::vector<HandedListener> deltas;
  for (auto& now : manager_->router_counts()) {
    auto it = std::find_if(handed_counts_.begin(), handed_counts_.end(), [&](const auto& h) {
      return h.app == now.app && h.host == now.host && h.port == now.port;
    });
    if (it == handed_counts_.end()) continue;
    now.stats = stats_since(it->stats, now.stats);
    if (!now.stats.empty()) deltas.push_back(std::move(now));
  }
  if (deltas.empty()) return;
  Status s = send_final_counts(opts_.data_dir + "/handoff.sock", deltas, 2000);
  if (!s.ok() && opts_.log)
    opts_.log->warn("the last counts did not reach the next agent process",
                    {{"error", s.message()}});
}

// On the handoff thread: a successor asked for the sockets.
Result<Handover> Agent::begin_handoff(bool shares_lock) {
  if (opts_.log) opts_.log->info("a new agent process takes over: handing over", {});
  {
    std::lock_guard send(keeper_send_mu_);  // waits for a send to the keeper under way
    keeper_paused_ = true;
    // From now on a death of this process must not make the keeper start a copy beside
    // the successor (keeper.h); the keeper_changed() of an abort ends that.
    if (opts_.keeper_fd >= 0)
      if (Status s = send_handing_over(opts_.keeper_fd); !s.ok() && opts_.log)
        opts_.log->warn(s.message(), {});
  }
  if (opts_.on_handoff_begin) opts_.on_handoff_begin();
  Handover h;
  h.listeners = manager_->freeze();
  handed_counts_.clear();
  for (const auto& l : h.listeners) handed_counts_.push_back({l.app, l.host, l.port, -1, l.stats});
  // The successor reads the state file: write it last here, then no more.
  stop_saver();
  if (Status s = state_->save(manager_->snapshot()); !s.ok()) {
    close_all(h.listeners);
    abort_handoff("state file not saved: " + s.message());
    return s;
  }
  if (shares_lock && lock_fd_ >= 0) {
    // The locked file itself goes along: the data dir is never unlocked in between.
    h.lock_fd = fcntl(lock_fd_, F_DUPFD_CLOEXEC, 0);
    if (opts_.api_listener) h.api_fd = opts_.api_listener();
  } else if (lock_fd_ >= 0) {
    close(lock_fd_);  // an older successor takes the lock itself
    lock_fd_ = -1;
  }
  return h;
}

void Agent::abort_handoff(const std::string& why) {
  // A moment's retry: the server's watchdog may be probing the lock (docs/agent.md).
  if (lock_fd_ < 0 && !take_lock(200).ok()) {
    // The successor holds the data dir: it serves, so this process only drains and goes.
    if (opts_.log)
      opts_.log->warn("handoff unconfirmed but the successor holds the data dir",
                      {{"reason", why}});
    handed_over_ = true;
    if (opts_.on_handed_over) opts_.on_handed_over();
    return;
  }
  if (opts_.log) opts_.log->warn("handoff failed; serving on", {{"reason", why}});
  start_saver();
  manager_->thaw();
  if (opts_.on_handoff_aborted) opts_.on_handoff_aborted();
  {
    std::lock_guard send(keeper_send_mu_);
    keeper_paused_ = false;
  }
  keeper_changed();
}

void Agent::start_saver() {
  {
    std::lock_guard lk(save_mu_);
    saver_stop_ = false;
  }
  saver_ = std::thread([this] { save_loop(); });
}

void Agent::stop_saver() {
  {
    std::lock_guard lk(save_mu_);
    saver_stop_ = true;
  }
  save_cv_.notify_all();
  if (saver_.joinable()) saver_.join();
}

void Agent::stop(bool stop_instances) {
  {
    std::lock_guard lk(keeper_mu_);
    keeper_stop_ = true;
  }
  keeper_cv_.notify_all();
  if (keeper_sync_.joinable()) keeper_sync_.join();
  if (handoff_) handoff_->stop();
  if (!work_) {
    // Stopped already (or never started): only the instances may still be asked to go.
    if (stop_instances && state_ && save_on_stop_ && !handed_over_) {
      manager_->shutdown(true);
      (void)state_->save(manager_->snapshot());
    }
    if (lock_fd_ >= 0) {
      close(lock_fd_);
      lock_fd_ = -1;
    }
    return;
  }
  if (handed_over_) {
    // The successor owns the instances and the state file: finish the requests in flight.
    save_on_stop_ = false;
    stop_instances = false;
    manager_->drain(opts_.drain_ms);
    send_drained_counts();
  }
  acme_->stop();
  manager_->shutdown(stop_instances);
  stop_saver();
  // The last word: what a restarted agent will re-adopt.
  if (save_on_stop_)
    if (Status s = state_->save(manager_->snapshot()); !s.ok() && opts_.log)
      opts_.log->error("agent state not saved", {{"error", s.message()}});
  work_.reset();
  io_.stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  if (lock_fd_ >= 0) {
    close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

void Agent::request_save() {
  {
    std::lock_guard lk(save_mu_);
    save_requested_ = true;
  }
  save_cv_.notify_one();
}

// Writes the state file whenever asked, coalescing requests that arrive while writing:
// the snapshot is taken under each app's lock briefly, the write and fsync under none.
void Agent::save_loop() {
  std::unique_lock lk(save_mu_);
  while (true) {
    save_cv_.wait(lk, [this] { return save_requested_ || saver_stop_; });
    if (saver_stop_) return;
    save_requested_ = false;
    lk.unlock();
    if (Status s = state_->save(manager_->snapshot()); !s.ok() && opts_.log)
      opts_.log->error("agent state not saved", {{"error", s.message()}});
    lk.lock();
  }
}

// What the router cannot carry out is refused before anything changes.
static Status check_router_settings(const AppDesiredState& state) {
  if (Status s = check_slo_exclude_paths(state.router.slo_exclude_paths); !s.ok())
    return invalid_argument("desired state of " + state.app + ": router.slo_" + s.message());
  return Status::Ok();
}

Result<int64_t> Agent::accept(const AppDesiredState& state) {
  FERRY_RETURN_IF_ERROR(check_router_settings(state));
  return manager_->put(state);
}

Result<int64_t> Agent::accept_weights(const std::string& app, int64_t generation,
                                      const std::map<std::string, int>& weights) {
  return manager_->set_weights(app, generation, weights);
}

Status Agent::put_app(const AppDesiredState& state) {
  FERRY_RETURN_IF_ERROR(check_router_settings(state));
  auto g = manager_->put(state);
  return g.ok() ? Status::Ok() : g.status();
}

Status Agent::set_weights(const std::string& app, int64_t generation,
                          const std::map<std::string, int>& weights) {
  auto g = manager_->set_weights(app, generation, weights);
  return g.ok() ? Status::Ok() : g.status();
}

Result<AppStatus> Agent::app_status(const std::string& app) {
  return manager_->status(app);
}

Result<std::map<std::string, int64_t>> Agent::generations() {
  return manager_->generations();
}

Status Agent::remove_app(const std::string& app) {
  return manager_->remove(app);
}

std::vector<std::string> Agent::apps() const {
  return manager_->names();
}

Status Agent::set_fault(const std::string& app, const FaultSetting& setting) {
  return manager_->set_fault(app, setting);
}

Status Agent::clear_fault(const std::string& app, const std::string& experiment) {
  (void)manager_->clear_fault(app, experiment);  // none active: nothing to end
  return Status::Ok();
}

Result<FaultReport> Agent::fault_report(const std::string& app) {
  return manager_->fault_report(app);
}

Result<std::string> Agent::kill_instance(const std::string& app, const std::string& id) {
  return manager_->kill_instance(app, id);
}

}  // namespace ferry
