// HookRunner: runs a deployment hook (backup, migration, smoke test) as a child process
// with a timeout, retries for exit codes marked transient, and output captured with
// secrets masked.
#pragma once

#include <string>

#include "common/mask.h"
#include "common/status.h"
#include "core/spec.h"

namespace ferry {

struct HookResult {
  int exit_code = 0;  // -signal when killed
  int attempts = 0;
  bool timed_out = false;
  std::string output;  // stdout+stderr, masked, at most the last 64 KiB
  double duration_ms = 0;
};

// Environment given to every hook on top of the spec's env: FERRY_APP, FERRY_ENV, ...,
// the app's env and its secrets. Nothing else of the server's environment reaches a hook
// but PATH, HOME, LANG and TZ (common/spawn.h), and no descriptor beyond 0-2.
using HookEnv = std::map<std::string, std::string>;

// Runs `hook` through spawn() as `user` ("" = the server's user, or kDefaultHookUser when
// the server can switch users: root, or CAP_SETUID + CAP_SETGID). Arguments are expanded like
// instance arguments: ${VERSION} (the release), ${PREVIOUS_VERSION}, ${APP}, ${ENV}, then any
// variable of the hook's environment; unknown names expand to "". Status is not ok when it failed
// after its retries (message names the hook, the exit code or timeout and the last lines of
// output).
Result<HookResult> run_hook(const HookSpec& hook, const HookEnv& env, const Masker& masker,
                            const std::string& user = "");

// The user hooks run as when the server is root and run.user is not set.
inline constexpr const char* kDefaultHookUser = "ferry-app";

}  // namespace ferry
