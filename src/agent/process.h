// Instance processes: started in their own session (so they outlive the agent and a
// signal to the group reaches their children), with stdout/stderr appended to a log
// file, identified by pid + kernel start time so a re-adopted pid is never a reused one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ferry {

struct ProcessHandle {
  int pid = 0;
  uint64_t start_ticks = 0;  // /proc/PID/stat field 22: tells a reused pid apart
};

struct ProcessLaunch {
  std::vector<std::string> argv;           // already expanded
  std::map<std::string, std::string> env;  // added to the agent's own environment
  std::vector<std::string> unset_env;      // names of the agent's environment not passed on
  std::string cwd;                         // "" = the agent's
  std::string log_path;                    // stdout+stderr appended here
};

// "${PORT}" / "$PORT"-style references in `text` replaced from `vars`, then from the
// agent's environment; unknown names expand to "". "$$" is a literal "$".
std::string expand_vars(const std::string& text, const std::map<std::string, std::string>& vars);

// Forks and execs; the child gets a new session, no inherited fds beyond 0-2.
Result<ProcessHandle> start_process(const ProcessLaunch& launch);

// Whether the process is still the one we started (alive and same start time).
bool process_alive(const ProcessHandle& p);
uint64_t process_start_ticks(int pid);

// Signals the whole process group (the session leader's group).
void signal_group(const ProcessHandle& p, int sig);

// Reaps a child of ours without blocking: true and its exit code (-signal) when it ended.
bool reap_child(int pid, int* exit_code);

}  // namespace ferry
