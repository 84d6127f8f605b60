#include "agent/instance_supervisor.h"

#include <algorithm>

#include "agent/process.h"

namespace ferry {

std::map<std::string, std::string> instance_vars(const std::string& app, const InstanceSpec& spec,
                                                 uint16_t port) {
  return {{"PORT", std::to_string(port)},
          {"VERSION", spec.release},
          {"RELEASE", spec.release},
          {"APP", app},
          {"INSTANCE", spec.id}};
}

std::map<std::string, std::string> instance_env(const std::string& app, const InstanceSpec& spec,
                                                uint16_t port) {
  const auto vars = instance_vars(app, spec, port);
  std::map<std::string, std::string> env;
  for (const auto& [k, v] : spec.run.env) env[k] = expand_vars(v, vars);
  env["PORT"] = vars.at("PORT");
  env.try_emplace("FERRY_APP", app);  // the control plane sets the app's own name
  env["FERRY_RELEASE"] = spec.release;
  env["FERRY_INSTANCE"] = spec.id;
  return env;
}

InstanceSupervisor::InstanceSupervisor(std::string key, std::string app, InstanceSpec spec,
                                       Runtime& runtime, const Clock& clock)
    : key_(std::move(key)),
      app_(std::move(app)),
      spec_(std::move(spec)),
      runtime_(runtime),
      clock_(clock) {
  status_.id = spec_.id;
  status_.release = spec_.release;
  status_.port = spec_.port;
}

int64_t InstanceSupervisor::backoff_ms(int restarts) {
  const int n = std::clamp(restarts - 1, 0, 7);
  return std::min<int64_t>(30'000, 250LL << n);
}

void InstanceSupervisor::set_state(InstanceState s) {
  if (status_.state != s) changed_ = true;
  status_.state = s;
}

bool InstanceSupervisor::take_changed() {
  const bool c = changed_;
  changed_ = false;
  return c;
}

bool InstanceSupervisor::probed() const {
  const auto s = status_.state;
  return !retiring_ && !handle_.empty() &&
         (s == InstanceState::kStarting || s == InstanceState::kReady ||
          s == InstanceState::kUnready);
}

void InstanceSupervisor::start() {
  launch();
}

void InstanceSupervisor::launch() {
  ++run_;
  ok_streak_ = fail_streak_ = live_fail_ = 0;
  const auto vars = instance_vars(app_, spec_, status_.port);
  LaunchSpec l;
  l.app = app_;
  l.instance = key_;
  for (const auto& a : spec_.run.command) l.argv.push_back(expand_vars(a, vars));
  l.image = spec_.run.image;
  l.release = spec_.release;
  l.pull = spec_.run.pull;
  l.cpus = spec_.run.cpus;
  l.memory_bytes = spec_.run.memory_bytes;
  l.env = instance_env(app_, spec_, status_.port);
  l.cwd = spec_.run.cwd;
  l.user = spec_.run.user;
  env_ = l.env;
  started_mono_ = now();
  status_.started_at_ms = wall();
  status_.ready_at_ms = 0;
  changed_ = true;
  auto h = status_.port == 0
               ? Result<RuntimeHandle>(unavailable(
                     "no free instance port: every port of the agent's instance port range is "
                     "taken (ferry agent --instance-ports)"))
               : runtime_.start(l);
  if (!h.ok()) {
    handle_ = {};
    status_.pid = 0;
    set_state(InstanceState::kCrashed);
    status_.message = h.status().message();
    status_.restarts++;
    restart_at_ = now() + backoff_ms(status_.restarts);
    return;
  }
  handle_ = *h;
  status_.pid = h->pid;
  status_.message.clear();
  if (spec_.checks.readiness.kind == ProbeSpec::Kind::kNone) {
    set_state(InstanceState::kReady);
    status_.ready_at_ms = wall();
  } else {
    set_state(InstanceState::kStarting);
  }
}

void InstanceSupervisor::adopt(const InstanceStatus& status, const RuntimeHandle& handle,
                               bool retiring) {
  status_ = status;
  status_.id = spec_.id;
  status_.release = spec_.release;
  retiring_ = retiring;
  drain_deadline_ = now() + 1000;
  changed_ = true;
  if (!handle.empty() && runtime_.adopt(handle)) {
    handle_ = handle;  // keeps its state: a ready instance routes at once, probes confirm
    env_ = instance_env(app_, spec_, status_.port);
    started_mono_ = now() - std::max<int64_t>(0, wall() - status_.started_at_ms);
    ++run_;
    return;
  }
  handle_ = {};
  status_.pid = 0;
  if (retiring_) {
    status_.state = InstanceState::kStopped;
  } else {
    status_.state = InstanceState::kCrashed;
    status_.message = "not running when the agent started";
    restart_at_ = now();
  }
}

void InstanceSupervisor::exited(int code) {
  handle_ = {};
  status_.pid = 0;
  status_.last_exit_code = code;
  status_.ready_at_ms = 0;
  changed_ = true;
  if (retiring_) {
    set_state(InstanceState::kStopped);
    return;
  }
  set_state(InstanceState::kCrashed);
  status_.restarts++;
  if (!status_.message.starts_with("liveness failed"))
    status_.message = code == kExitUnknown ? "exited (not a child of this agent: code unknown)"
                      : code < 0           ? "killed by signal " + std::to_string(-code)
                                           : "exited with code " + std::to_string(code);
  restart_at_ = now() + backoff_ms(status_.restarts);
}

void InstanceSupervisor::tick(int in_flight) {
  if (!handle_.empty()) {
    if (auto code = runtime_.exit_status(handle_)) {
      exited(*code);
      return;
    }
  }
  if (retiring_) {
    if (handle_.empty()) {
      set_state(InstanceState::kStopped);
      return;
    }
    if (term_at_ == 0) {
      // Drain: it is out of the routing table; its requests finish first.
      if (in_flight > 0 && now() < drain_deadline_) return;
      runtime_.stop(handle_, StopMode::kGraceful);
      term_at_ = now();
      set_state(InstanceState::kStopping);
    } else if (!killed_ && now() - term_at_ > std::max(100, spec_.run.stop_grace_ms)) {
      runtime_.stop(handle_, StopMode::kKill);
      killed_ = true;
    }
    return;
  }
  if (status_.state == InstanceState::kCrashed && now() >= restart_at_) launch();
}

void InstanceSupervisor::on_probe(ProbeRole role, uint64_t run, bool ok,
                                  const std::string& message) {
  if (run != run_ || !probed()) return;
  if (role == ProbeRole::kReadiness) {
    const ProbeSpec& p = spec_.checks.readiness;
    if (ok) {
      fail_streak_ = 0;
      if (++ok_streak_ >= std::max(1, p.success_threshold) &&
          status_.state != InstanceState::kReady) {
        set_state(InstanceState::kReady);
        status_.ready_at_ms = wall();
        status_.message.clear();
      }
    } else {
      ok_streak_ = 0;
      if (status_.message != message) changed_ = true;
      status_.message = message;
      if (++fail_streak_ >= std::max(1, p.failure_threshold) &&
          status_.state == InstanceState::kReady)
        set_state(InstanceState::kUnready);
    }
    return;
  }
  const ProbeSpec& p = spec_.checks.liveness;
  if (now() - started_mono_ < std::max(spec_.checks.startup_grace_ms, p.initial_delay_ms)) return;
  live_fail_ = ok ? 0 : live_fail_ + 1;
  if (live_fail_ >= std::max(1, p.failure_threshold)) {
    // Liveness failed: kill it; its exit is a crash, restarted with backoff.
    live_fail_ = 0;
    status_.message = "liveness failed: " + message;
    changed_ = true;
    runtime_.stop(handle_, StopMode::kKill);
  }
}

void InstanceSupervisor::retire() {
  if (retiring_) return;
  retiring_ = true;
  drain_deadline_ = now() + std::max(1000, spec_.run.stop_grace_ms);
  changed_ = true;
}

int64_t InstanceSupervisor::next_deadline_ms() const {
  if (retiring_) {
    if (term_at_ == 0) return drain_deadline_;
    return killed_ ? 0 : term_at_ + std::max(100, spec_.run.stop_grace_ms) + 1;
  }
  if (status_.state == InstanceState::kCrashed) return restart_at_;
  return 0;
}

}  // namespace ferry
