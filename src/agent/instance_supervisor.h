// InstanceSupervisor: one instance's state machine over a Runtime and a Clock.
//
//   start() ──▶ starting ──(readiness passes)──▶ ready ◀──▶ unready
//      │            │ exit / liveness fails        │
//      │            ▼                              ▼
//      └──▶ crashed (restart after a backoff: 250 ms doubling to 30 s) ──▶ starting …
//   retire(): out of the routing table → drained (in-flight requests finish, up to
//   max(1 s, stop_grace)) → SIGTERM → stop_grace → SIGKILL → stopped.
//
// It has no I/O of its own: processes go through Runtime, time through Clock, probe
// results arrive through on_probe(), the router's in-flight count through tick(). It is
// not thread-safe: its owner (the app, app_manager.h) serialises every call.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "agent/runtime.h"
#include "common/clock.h"
#include "core/agent_api.h"

namespace ferry {

enum class ProbeRole { kReadiness, kLiveness };

class InstanceSupervisor {
 public:
  // `key`: the instance's key in its app (its router backend id); `app`: "<app>.<env>".
  // `runtime` and `clock` must outlive the supervisor.
  InstanceSupervisor(std::string key, std::string app, InstanceSpec spec, Runtime& runtime,
                     const Clock& clock);

  // Launches it. A start the runtime refuses is a crash (restarted after a backoff).
  // The port must be set (spec.port or set_port()) before.
  void start();
  void set_port(uint16_t port) { status_.port = port; }

  // Takes over an instance from the state file. When the runtime no longer has it, it
  // is crashed with its restart due now (or stopped when it was being retired).
  void adopt(const InstanceStatus& status, const RuntimeHandle& handle, bool retiring);

  // Advances the machine to now: notices an exit, restarts when due, ends a liveness
  // failure, drains and stops a retired instance. `in_flight`: the router's requests to it.
  void tick(int in_flight);

  // A probe's result for the run `run` (see run()); results of an older run are ignored.
  void on_probe(ProbeRole role, uint64_t run, bool ok, const std::string& message);

  // No longer desired: drain, then stop.
  void retire();

  const std::string& key() const { return key_; }
  const InstanceSpec& spec() const { return spec_; }
  const InstanceStatus& status() const { return status_; }
  const RuntimeHandle& handle() const { return handle_; }
  bool retiring() const { return retiring_; }
  bool stopped() const { return retiring_ && status_.state == InstanceState::kStopped; }
  // In the routing table: ready and not retiring.
  bool routable() const { return !retiring_ && status_.state == InstanceState::kReady; }
  // Running and to be probed (starting, ready or unready, not retiring).
  bool probed() const;
  // Counts launches: probers are tied to one run.
  uint64_t run() const { return run_; }
  // Monotonic ms of the last launch (probe delays count from here).
  int64_t started_mono_ms() const { return started_mono_; }
  // The instance's environment (for its command probes) and the launch command.
  const std::map<std::string, std::string>& env() const { return env_; }
  // When tick() next has something to do on its own (a restart, a stop deadline); 0: none.
  int64_t next_deadline_ms() const;
  // True once since the last call when the status changed (router table, state file).
  bool take_changed();

  // Restart delay after `restarts` crashes: 250 ms doubling to 30 s.
  static int64_t backoff_ms(int restarts);

 private:
  void launch();
  void exited(int code);
  int64_t now() const { return clock_.monotonic_ms(); }
  int64_t wall() const { return to_unix_ms(clock_.now()); }
  void set_state(InstanceState s);

  std::string key_;
  std::string app_;
  InstanceSpec spec_;
  Runtime& runtime_;
  const Clock& clock_;
  InstanceStatus status_;
  RuntimeHandle handle_;
  std::map<std::string, std::string> env_;
  uint64_t run_ = 0;
  int64_t started_mono_ = 0;
  int64_t restart_at_ = 0;  // crashed: launch again at this time
  bool retiring_ = false;
  int64_t drain_deadline_ = 0;
  int64_t term_at_ = 0;  // retiring: SIGTERM sent at (0: not yet)
  bool killed_ = false;
  int ok_streak_ = 0, fail_streak_ = 0, live_fail_ = 0;
  bool changed_ = true;
};

// Variables a command and environment values may use ("${PORT}", "${VERSION}", …).
std::map<std::string, std::string> instance_vars(const std::string& app, const InstanceSpec& spec,
                                                 uint16_t port);
// The environment an instance (and its command probes) get: the spec's, expanded, plus
// PORT and FERRY_*.
std::map<std::string, std::string> instance_env(const std::string& app, const InstanceSpec& spec,
                                                uint16_t port);

}  // namespace ferry
