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
  std::map<std::string, std::string> env;  // see app_code
  std::vector<std::string> unset_env;      // names of the agent's environment not passed on
  std::string cwd;                         // "" = work_dir, else the agent's
  std::string log_path;                    // stdout+stderr appended here
  // App code (an instance): the child gets only PATH, HOME, LANG, TZ and `env`
  // (common/spawn.h), runs as `user` — by default kDefaultAppUser when the agent can
  // switch users (can_switch_users) — and in `work_dir` (created 0700 for that user)
  // unless `cwd` is set.
  // Otherwise (ferry's own agent process): the agent's environment minus `unset_env`
  // plus `env`, the agent's user.
  bool app_code = false;
  std::string user;
  std::string work_dir;
};

// The system user instances run as when the agent runs as root and run.user is not set
// (scripts/install-deps.sh creates it; docs/operations.md).
inline constexpr const char* kDefaultAppUser = "ferry-app";

// Where an instance's own working directory goes: $FERRY_INSTANCES_DIR, else
// /var/lib/ferry-instances/<agent> when the agent can switch users (outside every 0700
// data dir, which the instance's user cannot enter; <agent> is the first 12 hex digits of
// the SHA-256 of the agent's data dir, so two agents on one host never share a folder),
// else <agent_data_dir>/instances; then <app>/<instance>.
std::string instance_work_dir(const std::string& agent_data_dir, const std::string& app,
                              const std::string& instance);

// "${PORT}" / "$PORT"-style references in `text` replaced from `vars`, then from the
// agent's environment; unknown names expand to "". "$$" is a literal "$".
std::string expand_vars(const std::string& text, const std::map<std::string, std::string>& vars);

// Forks and execs through spawn() (common/spawn.h); the child gets a new session, no
// inherited fds beyond 0-2. kInvalidArgument when the user does not exist on this host,
// the working directory cannot be made, or exec fails.
Result<ProcessHandle> start_process(const ProcessLaunch& launch);

// Whether the process is still the one we started (alive and same start time).
bool process_alive(const ProcessHandle& p);
uint64_t process_start_ticks(int pid);

// /proc/PID/<what> as text, "" when the process is gone or the file cannot be read. Read
// with read(2), not an ifstream: libstdc++'s filebuf throws ("No such process") when the
// process ends while its file is being read.
std::string read_proc_file(int pid, const char* what);
// The fields of /proc/PID/stat after the command name (which may hold spaces and
// parentheses): [0] is the state letter (field 3), [19] the start time in clock ticks
// (field 22). Empty when the process is gone.
std::vector<std::string> proc_stat_fields(int pid);

// Signals the whole process group (the session leader's group).
void signal_group(const ProcessHandle& p, int sig);

// Reaps a child of ours without blocking: true and its exit code (-signal) when it ended.
bool reap_child(int pid, int* exit_code);

}  // namespace ferry
