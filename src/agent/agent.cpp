#include "agent/agent.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/probe.h"
#include "agent/process.h"
#include "agent/status_metrics.h"
#include "common/clock.h"
#include "router/router.h"

namespace ferry {

namespace fs = std::filesystem;

struct Agent::Instance {
  std::string key;          // its key in App::instances (and its router backend id)
  std::string replaced_by;  // an instance of the same id with a new run: drain once it is ready
  bool queued = false;      // a successor waiting for its turn: replacements go one at a time
  bool superseded = false;  // replaced and now draining: the next replacement waits for it
  InstanceSpec spec;
  InstanceStatus status;
  ProcessHandle proc;
  bool child = false;         // ours to reap (false for re-adopted instances)
  bool removing = false;      // no longer desired: drain, then stop
  int64_t restart_at_ms = 0;  // crashed: start again at this time
  int64_t term_at_ms = 0;     // removing: SIGTERM sent at this time (0: not yet)
  int64_t drain_deadline_ms = 0;
  bool liveness_failed = false;  // set by the prober: restart it
  std::string liveness_message;
  std::atomic<bool> probing{false};
  std::atomic<bool> prober_done{true};  // its thread has left probe_loop (safe to join now)
  std::thread prober;
  std::map<std::string, std::string> env;  // final environment (for command probes)
};

struct Agent::App {
  AppDesiredState desired;
  std::map<std::string, std::shared_ptr<Instance>> instances;
  std::unique_ptr<Router> router;
  std::string router_host;
  uint16_t router_port = 0;
  bool removing = false;
  std::string router_error;
};

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint16_t free_port(const std::string& host) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(host == "0.0.0.0" ? INADDR_ANY : INADDR_LOOPBACK);
  uint16_t port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int64_t backoff_ms(int restarts) {
  const int n = std::clamp(restarts - 1, 0, 7);
  return std::min<int64_t>(30'000, 250LL << n);
}

// The agent app an instance belongs to, "<app>.<env>" (its environment carries both).
std::string app_of(const Agent::Instance& inst) {
  const auto& env = inst.spec.run.env;
  auto app = env.find("FERRY_APP"), where = env.find("FERRY_ENV");
  if (app == env.end()) return {};
  return where == env.end() ? app->second : agent_app_name(app->second, where->second);
}

bool same_run(const InstanceSpec& a, const InstanceSpec& b) {
  Json ja, jb;
  to_json(ja, a.run);
  to_json(jb, b.run);
  return ja == jb && a.release == b.release && (b.port == 0 || a.port == b.port);
}

}  // namespace

Agent::Agent(AgentOptions options) : opts_(std::move(options)) {
  auto pf = metrics_.counter("ferry_health_check_failures_total", "Failed probes of an instance",
                             {"app", "instance", "probe"});
  probe_failures_ = pf.ok() ? *pf : nullptr;
  // Router and instance families over this agent's apps (label app = "<app>.<env>").
  register_status_metrics(metrics_, {"app"}, [this] {
    std::vector<StatusRow> out;
    for (const auto& name : apps())
      if (auto s = app_status(name); s.ok()) out.push_back({{name}, std::move(*s)});
    return out;
  });
}

Agent::~Agent() {
  stop();
}

std::string Agent::state_path() const {
  return opts_.data_dir + "/agent-state.json";
}

void Agent::log_info(const std::string& msg, const Json& fields) {
  if (opts_.log) opts_.log->info(msg, fields);
}

Status Agent::start() {
  std::error_code ec;
  fs::create_directories(opts_.data_dir, ec);
  if (ec)
    return invalid_argument("cannot create agent data dir " + opts_.data_dir + ": " + ec.message());
  fs::permissions(opts_.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  // Two agents on one data dir would both run the instances and race on the state file.
  const std::string lock_path = opts_.data_dir + "/agent.lock";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return internal_error("cannot open " + lock_path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd_);
    lock_fd_ = -1;
    return failed_precondition("another agent is running on data dir " + opts_.data_dir +
                               " (it holds " + lock_path + ")");
  }
  if (Status s = load_state(); !s.ok()) return s;
  running_ = true;
  supervisor_ = std::thread([this] { supervise(); });
  return Status::Ok();
}

void Agent::stop(bool stop_instances) {
  if (running_.exchange(false)) {
    cv_.notify_all();
    if (supervisor_.joinable()) supervisor_.join();
  }
  std::vector<std::shared_ptr<Instance>> all;
  {
    std::lock_guard lk(mu_);
    for (auto& [name, app] : apps_) {
      if (app->router) app->router->stop();
      app->router.reset();
      for (auto& [id, inst] : app->instances) all.push_back(inst);
    }
  }
  for (auto& inst : all) {
    inst->probing = false;
    if (inst->prober.joinable()) inst->prober.join();
    if (stop_instances && process_alive(inst->proc)) {
      signal_group(inst->proc, SIGTERM);
      for (int i = 0; i < 100 && process_alive(inst->proc); ++i) {
        int code;
        if (inst->child && reap_child(inst->proc.pid, &code)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      signal_group(inst->proc, SIGKILL);
      int status;
      if (inst->child) waitpid(inst->proc.pid, &status, 0);
    }
  }
  std::lock_guard lk(mu_);
  if (stop_instances) apps_.clear();
  // The last word: what a restarted agent will re-adopt (states changed since the last tick too).
  save_state();
  if (lock_fd_ >= 0) {
    close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

Status Agent::ensure_router(App& app) {
  const auto& d = app.desired;
  if (d.listen_port == 0) {
    if (app.router) app.router->stop();
    app.router.reset();
    return Status::Ok();
  }
  if (app.router && app.router_host == d.listen_host && app.router_port == d.listen_port)
    return Status::Ok();
  if (app.router) app.router->stop();
  RouterOptions ro;
  ro.host = d.listen_host;
  ro.port = d.listen_port;
  ro.threads = opts_.router_threads;
  ro.app = d.app;  // signed pin tokens and affinity cookies are valid for this app only
  ro.key_file = opts_.data_dir + "/router.key";
  auto r = std::make_unique<Router>(ro);
  if (Status s = r->start(); !s.ok()) {
    app.router.reset();
    app.router_error = s.message();
    return s.with_context("app " + d.app);
  }
  app.router = std::move(r);
  app.router_host = d.listen_host;
  app.router_port = d.listen_port;
  app.router_error.clear();
  update_router(app);
  return Status::Ok();
}

void Agent::update_router(App& app) {
  if (!app.router) return;
  RouteTable t;
  t.weights = app.desired.weights;
  t.policy = app.desired.router;
  t.stable = app.desired.stable_release;
  for (auto& [id, inst] : app.instances) {
    if (inst->removing || inst->status.state != InstanceState::kReady) continue;
    t.backends.push_back(
        RouteBackend{id, inst->spec.release, opts_.instance_host, inst->status.port});
  }
  app.router->set_table(std::move(t));
}

Status Agent::put_app(const AppDesiredState& state) {
  // Names become file names (instance logs): a restricted alphabet, never "." or "..".
  auto safe = [](const std::string& n) {
    if (n.empty() || n.size() > 128 || n == "." || n == "..") return false;
    for (char c : n)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
            c == '+'))
        return false;
    return true;
  };
  if (!safe(state.app))
    return invalid_argument("app name '" + state.app.substr(0, 128) +
                            "' must be 1-128 letters, digits, . _ - +");
  std::set<std::string> ids;
  for (const auto& i : state.instances) {
    if (!safe(i.id))
      return invalid_argument("app " + state.app + ": instance id '" + i.id.substr(0, 128) +
                              "' must be 1-128 letters, digits, . _ - +");
    if (!ids.insert(i.id).second)
      return invalid_argument("app " + state.app + ": instance id " + i.id + " is listed twice");
    if (i.run.command.empty() && i.run.image.empty())
      return invalid_argument("app " + state.app + ": instance " + i.id + " has no command");
  }
  for (const auto& [rel, w] : state.weights)
    if (w < 0) return invalid_argument("app " + state.app + ": weight of " + rel + " is negative");
  std::lock_guard lk(mu_);
  auto& slot = apps_[state.app];
  if (!slot) slot = std::make_unique<App>();
  App& app = *slot;
  if (state.generation < app.desired.generation) return Status::Ok();  // older: ignored
  app.desired = state;
  app.removing = false;
  const int64_t now = now_ms();
  for (const auto& spec : state.instances) {
    auto it = app.instances.find(spec.id);
    if (it != app.instances.end() && !it->second->removing && same_run(it->second->spec, spec))
      continue;
    bool replacing = false;
    if (it != app.instances.end()) {
      // Same id, different run (new secrets, say): the new one starts beside the old one,
      // which keeps serving until the new one is ready and then drains (no downtime).
      // Replacements go one instance at a time (tick() starts the next queued one).
      auto old = it->second;
      replacing = !old->removing;
      app.instances.erase(it);
      old->key = spec.id + "~" + std::to_string(++replace_seq_);
      if (!old->removing) old->replaced_by = spec.id;
      app.instances[old->key] = old;
    }
    auto inst = std::make_shared<Instance>();
    inst->key = spec.id;
    inst->spec = spec;
    inst->status.id = spec.id;
    inst->status.release = spec.release;
    inst->status.port = spec.port;
    app.instances[spec.id] = inst;
    if (replacing) {
      inst->queued = true;  // started by tick() when no other replacement is under way
      inst->status.message = "waiting to replace the running instance";
    } else {
      launch(app, *inst, now);
    }
  }
  for (auto& [id, inst] : app.instances)
    if (!ids.count(id) && !inst->removing &&
        !(!inst->replaced_by.empty() && ids.count(inst->replaced_by))) {
      inst->removing = true;
      inst->drain_deadline_ms = now + std::max(1000, inst->spec.run.stop_grace_ms);
    }
  Status s = ensure_router(app);
  update_router(app);
  dirty_ = true;
  save_state();
  cv_.notify_all();
  return s;
}

Status Agent::set_weights(const std::string& name, int64_t generation,
                          const std::map<std::string, int>& weights) {
  for (const auto& [rel, w] : weights)
    if (w < 0) return invalid_argument("app " + name + ": weight of " + rel + " is negative");
  std::lock_guard lk(mu_);
  auto it = apps_.find(name);
  if (it == apps_.end()) return not_found("app " + name + " is not on this agent");
  App& app = *it->second;
  if (generation < app.desired.generation) return Status::Ok();
  app.desired.generation = generation;
  app.desired.weights = weights;
  update_router(app);  // first: traffic moves now; the state file follows
  dirty_ = true;
  save_state();
  return Status::Ok();
}

Result<AppStatus> Agent::app_status(const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = apps_.find(name);
  if (it == apps_.end()) return not_found("app " + name + " is not on this agent");
  App& app = *it->second;
  AppStatus s;
  s.app = name;
  s.generation = app.desired.generation;
  s.weights = app.desired.weights;
  for (auto& [id, inst] : app.instances) {
    InstanceStatus st = inst->status;
    if (inst->removing && st.state != InstanceState::kStopped) st.state = InstanceState::kStopping;
    if (inst->removing) st.id = inst->spec.id;
    s.instances.push_back(std::move(st));
  }
  if (app.router) s.releases = app.router->stats();
  return s;
}

Status Agent::remove_app(const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = apps_.find(name);
  if (it == apps_.end()) return Status::Ok();
  App& app = *it->second;
  app.removing = true;
  app.desired.instances.clear();
  const int64_t now = now_ms();
  for (auto& [id, inst] : app.instances)
    if (!inst->removing) {
      inst->removing = true;
      inst->drain_deadline_ms = now + std::max(1000, inst->spec.run.stop_grace_ms);
    }
  update_router(app);
  dirty_ = true;
  save_state();
  return Status::Ok();
}

std::vector<std::string> Agent::apps() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [name, app] : apps_) out.push_back(name);
  return out;
}

namespace {

// Variables a command and environment values may use, and the environment an instance
// (and its command probes) get: the spec's, expanded, plus PORT and FERRY_*.
std::map<std::string, std::string> instance_vars(const std::string& agent_app,
                                                 const Agent::Instance& inst) {
  return {{"PORT", std::to_string(inst.status.port)},
          {"VERSION", inst.spec.release},
          {"RELEASE", inst.spec.release},
          {"APP", agent_app},
          {"INSTANCE", inst.spec.id}};
}

std::map<std::string, std::string> instance_env(const std::string& agent_app,
                                                const Agent::Instance& inst) {
  const auto vars = instance_vars(agent_app, inst);
  std::map<std::string, std::string> env;
  for (const auto& [k, v] : inst.spec.run.env) env[k] = expand_vars(v, vars);
  env["PORT"] = vars.at("PORT");
  env.try_emplace("FERRY_APP", agent_app);  // the control plane sets the app's own name
  env["FERRY_RELEASE"] = inst.spec.release;
  env["FERRY_INSTANCE"] = inst.spec.id;
  return env;
}

}  // namespace

void Agent::launch(App& app, Instance& inst, int64_t now) {
  if (inst.status.port == 0) inst.status.port = free_port(opts_.instance_host);
  const auto vars = instance_vars(app.desired.app, inst);
  ProcessLaunch l;
  for (const auto& a : inst.spec.run.command) l.argv.push_back(expand_vars(a, vars));
  l.env = instance_env(app.desired.app, inst);
  l.cwd = inst.spec.run.cwd;
  l.log_path = opts_.data_dir + "/logs/" + app.desired.app + "/" + inst.spec.id + ".log";
  l.app_code = true;  // clean environment, run.user (default ferry-app as root), own dir
  l.user = inst.spec.run.user;
  l.work_dir = instance_work_dir(opts_.data_dir, app.desired.app, inst.spec.id);
  inst.env = l.env;
  auto h = start_process(l);
  inst.status.started_at_ms = now;
  inst.status.ready_at_ms = 0;
  inst.liveness_failed = false;
  if (!h.ok()) {
    inst.status.state = InstanceState::kCrashed;
    inst.status.message = h.status().message();
    inst.status.restarts++;
    inst.restart_at_ms = now + backoff_ms(inst.status.restarts);
    return;
  }
  inst.proc = *h;
  inst.child = true;
  inst.status.pid = h->pid;
  const bool has_probe = inst.spec.checks.readiness.kind != ProbeSpec::Kind::kNone;
  inst.status.state = has_probe ? InstanceState::kStarting : InstanceState::kReady;
  if (!has_probe) inst.status.ready_at_ms = now;
  inst.status.message.clear();
  dirty_ = true;
  log_info("instance started", {{"app", app.desired.app},
                                {"instance", inst.spec.id},
                                {"release", inst.spec.release},
                                {"pid", h->pid},
                                {"port", inst.status.port}});
}

void Agent::supervise() {
  int64_t last_rotate = 0;
  std::vector<std::shared_ptr<Instance>> graveyard;
  while (running_) {
    const int64_t now = now_ms();
    std::vector<std::shared_ptr<Instance>> to_probe, to_join;
    {
      std::unique_lock lk(mu_);
      tick(now);
      for (auto& [name, app] : apps_)
        for (auto& [id, inst] : app->instances) {
          const bool alive = inst->status.state == InstanceState::kStarting ||
                             inst->status.state == InstanceState::kReady ||
                             inst->status.state == InstanceState::kUnready;
          const bool has_probes = inst->spec.checks.readiness.kind != ProbeSpec::Kind::kNone ||
                                  inst->spec.checks.liveness.kind != ProbeSpec::Kind::kNone;
          if (alive && has_probes && !inst->removing && !inst->queued && !inst->probing)
            to_probe.push_back(inst);
        }
      // Finished apps and instances leave here.
      for (auto it = apps_.begin(); it != apps_.end();) {
        App& app = *it->second;
        for (auto i = app.instances.begin(); i != app.instances.end();) {
          if (i->second->removing && i->second->status.state == InstanceState::kStopped) {
            to_join.push_back(i->second);
            i = app.instances.erase(i);
            dirty_ = true;
          } else {
            ++i;
          }
        }
        if (app.removing && app.instances.empty()) {
          if (app.router) app.router->stop();
          it = apps_.erase(it);
          dirty_ = true;
        } else {
          ++it;
        }
      }
      if (dirty_) save_state();
      if (now - last_rotate > 5000) {
        last_rotate = now;
        for (auto& [name, app] : apps_)
          for (auto& [id, inst] : app->instances)
            rotate_log(opts_.data_dir + "/logs/" + name + "/" + inst->spec.id + ".log",
                       opts_.max_log_bytes);
      }
    }
    // A removed instance's prober may be inside a probe (up to its timeout): it is joined
    // once it has left, so one slow probe never stalls the supervisor.
    for (auto& inst : to_join) {
      inst->probing = false;
      graveyard.push_back(inst);
    }
    std::erase_if(graveyard, [](const std::shared_ptr<Instance>& inst) {
      if (!inst->prober_done) return false;
      if (inst->prober.joinable()) inst->prober.join();
      return true;
    });
    for (auto& inst : to_probe) {
      if (!inst->prober_done) continue;  // the last one is still finishing its probe
      if (inst->prober.joinable()) inst->prober.join();
      inst->probing = true;
      inst->prober_done = false;
      inst->prober = std::thread([this, inst] { probe_loop(inst); });
    }
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::milliseconds(opts_.tick_ms), [this] { return !running_; });
  }
  for (auto& inst : graveyard)
    if (inst->prober.joinable()) inst->prober.join();
}

void Agent::tick(int64_t now) {
  for (auto& [name, app] : apps_) {
    if (!app->router && app->desired.listen_port != 0 && !app->removing) (void)ensure_router(*app);
    bool changed = false;
    // Rolling replacement: the next queued successor starts once no other one is on its way.
    bool replacing = false;
    for (auto& [id, inst] : app->instances) {
      if (!inst->replaced_by.empty() && !inst->removing) {
        auto next = app->instances.find(inst->replaced_by);
        replacing |= next != app->instances.end() && !next->second->queued;
      }
      // One extra process at most: a superseded instance is gone before the next starts.
      replacing |= inst->superseded && inst->status.state != InstanceState::kStopped;
    }
    if (!replacing)
      for (auto& [id, inst] : app->instances)
        if (inst->queued) {
          inst->queued = false;
          launch(*app, *inst, now);
          break;
        }
    for (auto& [id, inst] : app->instances) {
      if (inst->queued) continue;
      const auto before = inst->status.state;
      tick_instance(*app, *inst, now);
      changed |= before != inst->status.state;
    }
    if (changed) update_router(*app);
  }
}

void Agent::tick_instance(App& app, Instance& inst, int64_t now) {
  auto& st = inst.status;
  const bool running = st.state == InstanceState::kStarting || st.state == InstanceState::kReady ||
                       st.state == InstanceState::kUnready || st.state == InstanceState::kStopping;
  // Did it exit?
  if (running && inst.proc.pid > 0) {
    int code = 0;
    bool exited = false;
    if (inst.child) {
      exited = reap_child(inst.proc.pid, &code);
    } else if (!process_alive(inst.proc)) {
      exited = true;
      code = -1;  // not our child: the exit code is unknown
    }
    if (exited) {
      inst.proc = {};
      st.pid = 0;
      st.last_exit_code = code;
      dirty_ = true;
      if (inst.removing) {
        st.state = InstanceState::kStopped;
        return;
      }
      st.state = InstanceState::kCrashed;
      st.restarts++;
      st.ready_at_ms = 0;
      st.message = code < 0 ? "killed by signal " + std::to_string(-code)
                            : "exited with code " + std::to_string(code);
      inst.restart_at_ms = now + backoff_ms(st.restarts);
      log_info("instance exited", {{"app", app.desired.app},
                                   {"instance", inst.spec.id},
                                   {"exit_code", code},
                                   {"restarts", st.restarts}});
      return;
    }
  }
  if (inst.removing) {
    if (st.state == InstanceState::kCrashed || inst.proc.pid == 0) {
      st.state = InstanceState::kStopped;
      return;
    }
    if (inst.term_at_ms == 0) {
      // Drain: it is out of the routing table; wait for its requests to finish.
      const int busy = app.router ? app.router->in_flight(inst.key) : 0;
      if (busy > 0 && now < inst.drain_deadline_ms) return;
      signal_group(inst.proc, SIGTERM);
      inst.term_at_ms = now;
      st.state = InstanceState::kStopping;
    } else if (now - inst.term_at_ms > std::max(100, inst.spec.run.stop_grace_ms)) {
      signal_group(inst.proc, SIGKILL);
    }
    return;
  }
  if (!inst.replaced_by.empty()) {
    auto next = app.instances.find(inst.replaced_by);
    if (next == app.instances.end() || next->second->status.state == InstanceState::kReady) {
      inst.replaced_by.clear();
      inst.superseded = true;
      inst.removing = true;
      inst.drain_deadline_ms = now + std::max(1000, inst.spec.run.stop_grace_ms);
      update_router(app);
      return;
    }
  }
  if (st.state == InstanceState::kCrashed && now >= inst.restart_at_ms) {
    launch(app, inst, now);
    return;
  }
  if (inst.liveness_failed && inst.proc.pid > 0) {
    // Liveness failed: stop it; the exit path above restarts it with backoff.
    inst.liveness_failed = false;
    st.message = "liveness failed: " + inst.liveness_message;
    signal_group(inst.proc, SIGKILL);
  }
}

void Agent::probe_loop(std::shared_ptr<Instance> inst) {
  ProbeSpec ready, live;
  int grace = 0;
  uint16_t port;
  std::map<std::string, std::string> env;
  int64_t started;
  {
    std::lock_guard lk(mu_);
    ready = inst->spec.checks.readiness;
    live = inst->spec.checks.liveness;
    grace = inst->spec.checks.startup_grace_ms;
    port = inst->status.port;
    env = inst->env;
    started = inst->status.started_at_ms;
  }
  int ok_streak = 0, fail_streak = 0, live_fail = 0;
  const int64_t first = started + ready.initial_delay_ms;
  int64_t next_ready = first, next_live = started + std::max(grace, live.initial_delay_ms);
  while (inst->probing && running_) {
    const int64_t now = now_ms();
    if (ready.kind != ProbeSpec::Kind::kNone && now >= next_ready) {
      ProbeResult r = run_probe(ready, opts_.instance_host, port, env);
      next_ready = now_ms() + std::max(10, ready.interval_ms);
      std::lock_guard lk(mu_);
      auto& st = inst->status;
      // A crash, a restart (new start time) or removal ends this prober; the supervisor
      // starts a fresh one with the new process's delays and counters.
      if (inst->removing || st.state == InstanceState::kCrashed || st.started_at_ms != started)
        break;
      if (r.ok) {
        fail_streak = 0;
        if (++ok_streak >= std::max(1, ready.success_threshold) &&
            st.state != InstanceState::kReady) {
          st.state = InstanceState::kReady;
          st.ready_at_ms = now_ms();
          st.message.clear();
          cv_.notify_all();
          dirty_ = true;
          for (auto& [name, app] : apps_)
            if (app->instances.count(inst->key) && app->instances[inst->key] == inst)
              update_router(*app);
        }
      } else {
        ok_streak = 0;
        st.message = r.message;
        if (probe_failures_)
          probe_failures_->with({app_of(*inst), inst->spec.id, "readiness"}).inc();
        if (++fail_streak >= std::max(1, ready.failure_threshold) &&
            st.state == InstanceState::kReady) {
          st.state = InstanceState::kUnready;
          for (auto& [name, app] : apps_)
            if (app->instances.count(inst->key) && app->instances[inst->key] == inst)
              update_router(*app);
        }
      }
    }
    if (live.kind != ProbeSpec::Kind::kNone && now >= next_live) {
      ProbeResult r = run_probe(live, opts_.instance_host, port, env);
      next_live = now_ms() + std::max(10, live.interval_ms);
      live_fail = r.ok ? 0 : live_fail + 1;
      if (!r.ok && probe_failures_) {
        std::lock_guard lk(mu_);
        probe_failures_->with({app_of(*inst), inst->spec.id, "liveness"}).inc();
      }
      if (live_fail >= std::max(1, live.failure_threshold)) {
        std::lock_guard lk(mu_);
        if (inst->removing || inst->status.started_at_ms != started ||
            inst->status.state == InstanceState::kCrashed)
          break;
        inst->liveness_failed = true;
        inst->liveness_message = r.message;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  inst->probing = false;
  inst->prober_done = true;
}

// State file: desired state of every app and the process of each instance.
void Agent::save_state() {
  Json apps = Json::array();
  for (const auto& [name, app] : apps_) {
    Json a;
    to_json(a["desired"], app->desired);
    a["removing"] = app->removing;
    Json insts = Json::array();
    for (const auto& [key, inst] : app->instances) {
      Json i;
      to_json(i["spec"], inst->spec);
      to_json(i["status"], inst->status);
      i["key"] = key;
      i["start_ticks"] = inst->proc.start_ticks;
      i["removing"] = inst->removing;
      i["replaced_by"] = inst->replaced_by;
      i["queued"] = inst->queued;
      insts.push_back(std::move(i));
    }
    a["instances"] = std::move(insts);
    apps.push_back(std::move(a));
  }
  const Json doc{{"version", 1}, {"apps", apps}};
  const std::string path = state_path();
  const std::string tmp = path + ".tmp";
  const std::string text = dump_json(doc);
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  const bool ok = off == text.size() && fsync(fd) == 0;
  close(fd);
  if (ok && rename(tmp.c_str(), path.c_str()) == 0) dirty_ = false;
}

Status Agent::load_state() {
  std::ifstream f(state_path());
  if (!f) return Status::Ok();  // first start
  std::stringstream ss;
  ss << f.rdbuf();
  auto doc = parse_json(ss.str());
  if (!doc.ok()) return doc.status().with_context("agent state file " + state_path());
  std::lock_guard lk(mu_);
  const int64_t now = now_ms();
  try {
    for (const auto& a : (*doc)["apps"]) {
      auto app = std::make_unique<App>();
      from_json(a.at("desired"), app->desired);
      app->removing = a.value("removing", false);
      for (const auto& i : a.at("instances")) {
        auto inst = std::make_shared<Instance>();
        from_json(i.at("spec"), inst->spec);
        from_json(i.at("status"), inst->status);
        inst->removing = i.value("removing", false);
        inst->replaced_by = i.value("replaced_by", "");
        inst->queued = i.value("queued", false);
        inst->key = i.value("key", inst->spec.id);
        inst->proc.pid = inst->status.pid;
        inst->proc.start_ticks = i.value("start_ticks", uint64_t{0});
        inst->drain_deadline_ms = now + 1000;
        if (inst->proc.pid > 0 && process_alive(inst->proc)) {
          ++adopted_;  // keeps its state: a ready instance routes at once, probes confirm
          inst->env = instance_env(app->desired.app, *inst);
        } else {
          inst->proc = {};
          inst->status.pid = 0;
          if (!inst->removing) {
            inst->status.state = InstanceState::kCrashed;
            inst->status.message = "not running when the agent started";
            inst->restart_at_ms = now;
          } else {
            inst->status.state = InstanceState::kStopped;
          }
        }
        app->instances[inst->key] = inst;
      }
      const std::string name = app->desired.app;
      apps_[name] = std::move(app);
      if (Status s = ensure_router(*apps_[name]); !s.ok())
        log_info("router not started", {{"app", name}, {"error", s.message()}});
    }
  } catch (const std::exception& e) {
    return invalid_argument("agent state file " + state_path() + " is malformed: " + e.what());
  }
  log_info("agent state loaded", {{"apps", apps_.size()}, {"adopted", adopted_}});
  return Status::Ok();
}

}  // namespace ferry
