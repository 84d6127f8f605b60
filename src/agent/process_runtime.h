// ProcessRuntime: instances as processes (today's behaviour). Each starts in its own
// session (it outlives the agent; a signal to the group reaches its children), with
// stdout/stderr appended to data_dir/logs/<app>/<instance>.log, identified by pid + kernel
// start time so a re-adopted pid is never a reused one.
//
// Log files are bounded (LogPolicy): a file past max_bytes is rotated to .1 … .keep, and
// the logs of instances that are gone are removed, keeping the newest `keep` per app.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/process.h"
#include "agent/runtime.h"

namespace ferry {

struct LogPolicy {
  int keep = 5;                    // rotated files per instance; logs of gone instances per app
  uint64_t max_bytes = 10u << 20;  // a log file past this is rotated
};

class ProcessRuntime final : public Runtime {
 public:
  ProcessRuntime(std::string log_dir, LogPolicy policy);

  Result<RuntimeHandle> start(const LaunchSpec& launch) override;
  std::optional<int> exit_status(const RuntimeHandle& h) override;
  // A pidfd (pidfd_open): for a child of ours and an adopted process alike.
  int exit_fd(const RuntimeHandle& h) override;
  void stop(const RuntimeHandle& h, StopMode mode) override;
  bool alive(const RuntimeHandle& h) override;
  bool adopt(const RuntimeHandle& h) override;
  std::string log_path(const std::string& app, const std::string& instance) const override;

  // Rotates the logs of `app`'s current instances that grew past max_bytes and removes the
  // logs of instances no longer listed, keeping those of the newest `keep` gone instances.
  void housekeeping(const std::string& app, const std::vector<std::string>& current) override;

  // The one place a process is launched (the common spawn path plugs in here).
  static Result<ProcessHandle> spawn(const ProcessLaunch& launch);

 private:
  std::string log_dir_;
  LogPolicy policy_;
  std::mutex mu_;
  std::set<int> children_;  // pids we forked and have not reaped
};

// Rotates `path` once it exceeds `max_bytes`: path.(keep-1) → path.keep, …, then path is
// copied to path.1 and truncated, so a child appending with O_APPEND keeps writing to path.
void rotate_log_file(const std::string& path, uint64_t max_bytes, int keep);

}  // namespace ferry
