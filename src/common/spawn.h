// One way to start a child process for code ferry does not trust (instances and hooks):
// a clean environment, no inherited descriptors, an optional other user, a working
// directory. The agent's process runtime and the engine's hook runner both call spawn().
//
//   SpawnOptions o;
//   o.argv = {"./server", "--port", "8080"};
//   o.env = {{"PORT", "8080"}};          // the app's env, its secrets, FERRY_*
//   o.user = "ferry-app";               // resolved here, switched to in the child
//   auto pid = spawn(o);                // exec failures come back as an error
//
// The child's environment is PATH, HOME, LANG and TZ taken from the parent (when set),
// then `env` on top: nothing else of the parent (FERRY_TOKEN, notification secrets, the
// agent's own settings) reaches it. Every descriptor >= 3 is closed before exec
// (close_range, with a close() loop where the kernel lacks it).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ferry {

// The parent variables a child may see, by name.
inline constexpr const char* kInheritedEnv[] = {"PATH", "HOME", "LANG", "TZ"};

// A user to run as, looked up before the child is started (getpwnam is not safe in it).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (initgroups)
  std::string home;
};

// "name" or a numeric uid. kInvalidArgument when the text is not a user name (see
// valid_user_name) or no such user exists on this host.
Result<RunAs> lookup_user(const std::string& name);

// Whether this process may switch users: root, or CAP_SETUID and CAP_SETGID in its
// effective set (a systemd unit with AmbientCapabilities=CAP_SETUID CAP_SETGID …).
bool can_switch_users();

// The syntax `ferry validate` accepts for run.user: 1-32 characters of a-z, 0-9, _ and -,
// starting with a letter or _ (useradd's default), or a number (a uid).
bool valid_user_name(const std::string& name);

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH when it has no '/'
  std::map<std::string, std::string> env;  // added to the allowlisted parent variables
  std::string cwd;                         // "" = the parent's
  std::optional<RunAs> user;               // switch to this user (the parent must be root)
  int stdin_fd = -1;                       // -1: /dev/null
  int stdout_fd = -1;                      // -1: /dev/null
  int stderr_fd = -1;                      // -1: same as stdout
  bool new_session = false;  // setsid (instances outlive the agent); else a process group
  // For ferry's own processes only (the local agent): the parent's whole environment
  // minus `unset_env`, then `env`, instead of the allowlist.
  bool inherit_parent_env = false;
  std::vector<std::string> unset_env;
};

// The environment a child gets: kInheritedEnv from the parent, then `env` (which wins).
// With a user switch, HOME is that user's home unless `env` sets it.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& env,
                                           const std::optional<RunAs>& user = std::nullopt);

// Starts the child with vfork and execs. Returns the child's pid once exec succeeded; a
// failure of chdir, the user switch or exec is an error naming the program and errno (the
// child is reaped). Its cost does not grow with the size of this process.
Result<pid_t> spawn(const SpawnOptions& options);

// Closes every descriptor >= `lowest` except `keep` (-1: none). Async-signal-safe and
// allocation-free: for the child between vfork and exec.
void close_descriptors_from(int lowest, int keep = -1);
// The fallback where close_range(2) is missing: close() on each of [lo, hi] below the
// descriptor limit. Public for tests.
void close_descriptors_by_loop(int lo, int hi);

// "${NAME}" and "$NAME" in `text` replaced through `lookup` (unknown: ""); "$$" is a
// literal "$". Instances' and hooks' arguments are expanded with this.
std::string expand_vars_with(const std::string& text,
                             const std::function<std::string(const std::string&)>& lookup);

}  // namespace ferry
