#include "engine/hook_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/spawn.h"

namespace ferry {

namespace {

constexpr size_t kMaxOutput = 64 * 1024;

struct Attempt {
  int exit_code = -1;
  bool timed_out = false;
  std::string output;
};

// The variables a hook's arguments may use: the short names instance arguments have,
// then the hook's own environment.
std::map<std::string, std::string> hook_vars(const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> vars = env;
  for (auto [short_name, name] : {std::pair{"VERSION", "FERRY_RELEASE"},
                                  {"PREVIOUS_VERSION", "FERRY_PREVIOUS_RELEASE"},
                                  {"APP", "FERRY_APP"},
                                  {"ENV", "FERRY_ENV"}})
    if (auto it = env.find(name); it != env.end()) vars.try_emplace(short_name, it->second);
  return vars;
}

// One run: spawn in its own process group, read output until exit or timeout.
Result<Attempt> run_once(const HookSpec& hook, const HookEnv& env,
                         const std::optional<RunAs>& user) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return internal_error("pipe failed for hook " + hook.name);
  SpawnOptions o;
  for (const auto& [k, v] : hook.env) o.env[k] = v;
  for (const auto& [k, v] : env) o.env[k] = v;
  o.user = user;
  const auto vars = hook_vars(o.env);
  const std::vector<std::string> allowed_env = child_environment({}, user);
  for (const auto& a : hook.command)
    o.argv.push_back(expand_vars_with(a, [&](const std::string& name) -> std::string {
      if (auto it = vars.find(name); it != vars.end()) return it->second;
      for (const auto& kv : allowed_env)  // PATH, HOME, LANG, TZ
        if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 &&
            kv[name.size()] == '=')
          return kv.substr(name.size() + 1);
      return {};
    }));
  o.stdout_fd = fds[1];
  auto spawned = spawn(o);
  if (!spawned.ok()) {
    close(fds[0]);
    close(fds[1]);
    return Status(spawned.status().code(), "hook " + hook.name + ": " + spawned.status().message());
  }
  const pid_t pid = *spawned;
  close(fds[1]);
  Attempt a;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(hook.timeout_ms);
  char buf[4096];
  bool open_pipe = true;
  while (open_pipe) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      a.timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 200)));
    if (r > 0) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) {
        open_pipe = false;
      } else {
        a.output.append(buf, static_cast<size_t>(n));
        if (a.output.size() > 2 * kMaxOutput) a.output.erase(0, a.output.size() - kMaxOutput);
      }
    }
  }
  close(fds[0]);
  int status = 0;
  if (a.timed_out) {
    kill(-pid, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    kill(-pid, SIGKILL);
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    a.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    a.exit_code = -WTERMSIG(status);
  if (a.output.size() > kMaxOutput) a.output.erase(0, a.output.size() - kMaxOutput);
  return a;
}

std::string last_lines(const std::string& s, int n) {
  size_t end = s.size();
  while (end > 0 && s[end - 1] == '\n') --end;
  size_t start = end;
  for (int i = 0; i < n && start > 0; ++i) {
    const size_t nl = s.rfind('\n', start - 1);
    start = nl == std::string::npos ? 0 : nl;
    if (nl == std::string::npos) break;
  }
  if (start < end && s[start] == '\n') ++start;
  return s.substr(start, end - start);
}

}  // namespace

Result<HookResult> run_hook(const HookSpec& hook, const HookEnv& env, const Masker& masker,
                            const std::string& user) {
  if (hook.command.empty()) return invalid_argument("hook " + hook.name + " has no command");
  std::optional<RunAs> run_as;
  const std::string who = user.empty() && can_switch_users() ? kDefaultHookUser : user;
  if (!who.empty()) {
    auto r = lookup_user(who);
    if (!r.ok())
      return Status(r.status().code(), "hook " + hook.name + ": " + r.status().message());
    if (r->uid != geteuid()) {
      if (!can_switch_users())
        return invalid_argument("hook " + hook.name + ": run.user '" + who +
                                "' needs the server to run as root or with CAP_SETUID and "
                                "CAP_SETGID (docs/operations.md)");
      run_as = *r;
    }
  }
  HookResult out;
  const auto t0 = std::chrono::steady_clock::now();
  const int max_attempts = 1 + std::clamp(hook.retries, 0, 3);
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    auto a = run_once(hook, env, run_as);
    if (!a.ok()) return a.status();
    out.attempts = attempt;
    out.exit_code = a->exit_code;
    out.timed_out = a->timed_out;
    out.output = masker.mask(a->output);
    if (!a->timed_out && a->exit_code == 0) break;
    const bool transient =
        !a->timed_out &&
        std::find(hook.transient_exit_codes.begin(), hook.transient_exit_codes.end(),
                  a->exit_code) != hook.transient_exit_codes.end();
    if (!transient || attempt == max_attempts) {
      out.duration_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::string why = a->timed_out ? "timed out after " + std::to_string(hook.timeout_ms) + " ms"
                                     : "exited with code " + std::to_string(a->exit_code);
      return Status(Code::kFailedPrecondition, "hook " + hook.name + " " + why + " (attempt " +
                                                   std::to_string(attempt) + " of " +
                                                   std::to_string(max_attempts) +
                                                   "); last output: " + last_lines(out.output, 5));
    }
    // transient: back off a little before the next attempt
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
  }
  out.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace ferry
