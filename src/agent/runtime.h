// Runtime: how an instance is run (a process today; a container later). The instance
// state machine (instance_supervisor.h) drives instances only through this interface, so
// it is tested with a fake runtime and a fake clock.
//
// Thread safety: every method may be called from any thread; an implementation guards its
// own state. Methods never block for long: start() forks (or creates a container) and
// returns, stop() only signals, exit_status() never waits.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/spec.h"

namespace ferry {

// What to start: the command already expanded, the final environment.
struct LaunchSpec {
  std::string app;       // agent app name, "<app>.<env>"
  std::string instance;  // instance key, unique within the app (names its log file)
  std::vector<std::string> argv;
  std::string image;    // container runtimes only (argv, when set, is the container's command)
  std::string release;  // container runtimes: labels the container
  PullPolicy pull = PullPolicy::kMissing;  // container runtimes only
  double cpus = 0;                         // container runtimes only (0 = no limit)
  int64_t memory_bytes = 0;                // container runtimes only (0 = no limit)
  std::map<std::string, std::string> env;
  std::string cwd;   // "" = the agent's
  std::string user;  // run.user: "" = the default (ferry-app when the agent may switch users)
};

// Identifies a started instance across agent restarts (kept in the state file).
struct RuntimeHandle {
  int pid = 0;               // process runtime: the session leader
  uint64_t start_ticks = 0;  // process runtime: tells a reused pid apart
  std::string id;            // container runtimes: the container id
  bool empty() const { return pid <= 0 && id.empty(); }
};

// The exit code reported for an instance that ended but was not ours to reap (adopted
// after an agent restart): the kernel tells its code only to its parent.
inline constexpr int kExitUnknown = -1000;

enum class StopMode { kGraceful, kKill };

class Runtime {
 public:
  virtual ~Runtime() = default;

  // Starts an instance. An error (command not found, cwd missing, log not writable) is
  // the message an operator sees on the instance; nothing is left running then.
  virtual Result<RuntimeHandle> start(const LaunchSpec& launch) = 0;

  // nullopt while the instance runs; once it ended, its exit code (-signal when killed,
  // kExitUnknown when not ours to reap). Reaps it: report each end once.
  virtual std::optional<int> exit_status(const RuntimeHandle& h) = 0;

  // kGraceful asks it to stop (SIGTERM to its process group); kKill ends it (SIGKILL).
  virtual void stop(const RuntimeHandle& h, StopMode mode) = 0;

  // A file descriptor that becomes readable once the instance has ended (Linux: a pidfd),
  // so its owner is woken by the end instead of polling exit_status() (which still reports
  // it, once). The caller owns and closes it; it is readable at once when the instance
  // ended before it was asked for. -1 when the runtime cannot give one (no pidfd in the
  // kernel, a runtime without exit notices): the caller polls.
  virtual int exit_fd(const RuntimeHandle& h) {
    (void)h;
    return -1;
  }

  // Whether the instance still runs (and is the one we started, not a reused pid).
  virtual bool alive(const RuntimeHandle& h) = 0;

  // After an agent restart: takes over an instance an earlier agent started. False when
  // it is gone (the caller starts it again).
  virtual bool adopt(const RuntimeHandle& h) = 0;

  // Where the instance's output goes.
  virtual std::string log_path(const std::string& app, const std::string& instance) const = 0;

  // Bounds what the app's instances leave behind (log rotation and removal); `current`
  // are the keys of its instances now (empty: the app left). Disk I/O: the caller holds
  // no lock.
  virtual void housekeeping(const std::string& app, const std::vector<std::string>& current) {
    (void)app;
    (void)current;
  }
};

}  // namespace ferry
