#include "agent/agent.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/status_metrics.h"
#include "common/crypto.h"

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
  manager_ = std::make_unique<AppManager>(
      io_, *runtime_, clock_, mo, [this] { request_save(); }, pf.ok() ? *pf : nullptr);
}

Agent::~Agent() {
  stop();
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
  // A predecessor lets go of the lock just before it sends its sockets: wait for it.
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
  }
  // Two agents on one data dir would both run the instances and race on the state file.
  if (Status s = take_lock(took_over_ ? opts_.handoff_timeout_ms : 100); !s.ok()) return s;
  write_pid_file();
  auto key = state_key();
  if (!key.ok()) return key.status();
  state_ = std::make_unique<StateFile>(opts_.data_dir + "/agent-state.json", *key);
  auto loaded = state_->load();
  if (!loaded.ok()) return loaded.status();
  work_ =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor());
  int n = opts_.io_threads;
  if (n <= 0) n = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 2, 8);
  for (int i = 0; i < n; ++i) io_threads_.emplace_back([this] { io_.run(); });
  start_saver();
  if (*loaded) {
    std::vector<HandedListener>* inherited = predecessor_ ? &predecessor_->listeners() : nullptr;
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
    if (opts_.log)
      opts_.log->info("agent state loaded", {{"apps", manager_->names().size()},
                                             {"adopted", adopted_},
                                             {"inherited_sockets", inherited_listeners_}});
  }
  if (const std::string strays = runtime_->remove_strays(); !strays.empty() && opts_.log)
    opts_.log->warn(strays, {});
  HandoffServer::Hooks hooks;
  hooks.begin = [this] { return begin_handoff(); };
  hooks.abort = [this](const std::string& why) { abort_handoff(why); };
  hooks.done = [this] {
    handed_over_ = true;
    if (opts_.log) opts_.log->info("handed over to the next agent process; draining", {});
    if (opts_.on_handed_over) opts_.on_handed_over();
  };
  handoff_ =
      std::make_unique<HandoffServer>(handoff_path, std::move(hooks), opts_.handoff_timeout_ms);
  if (Status s = handoff_->start(); !s.ok() && opts_.log)
    opts_.log->warn("hot restart unavailable", {{"error", s.message()}});
  return Status::Ok();
}

Status Agent::confirm_takeover() {
  if (!predecessor_) return Status::Ok();
  Status s = predecessor_->ready();
  predecessor_.reset();
  return s;
}

// On the handoff thread: a successor asked for the sockets.
Result<std::vector<HandedListener>> Agent::begin_handoff() {
  if (opts_.log) opts_.log->info("a new agent process takes over: handing over", {});
  if (opts_.on_handoff_begin) opts_.on_handoff_begin();
  auto listeners = manager_->freeze();
  // The successor reads the state file: write it last here, then no more.
  stop_saver();
  if (Status s = state_->save(manager_->snapshot()); !s.ok()) {
    close_all(listeners);
    abort_handoff("state file not saved: " + s.message());
    return s;
  }
  if (lock_fd_ >= 0) {
    close(lock_fd_);  // releases the flock: the successor takes it
    lock_fd_ = -1;
  }
  return listeners;
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
  }
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

Result<int64_t> Agent::accept(const AppDesiredState& state) {
  return manager_->put(state);
}

Result<int64_t> Agent::accept_weights(const std::string& app, int64_t generation,
                                      const std::map<std::string, int>& weights) {
  return manager_->set_weights(app, generation, weights);
}

Status Agent::put_app(const AppDesiredState& state) {
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
