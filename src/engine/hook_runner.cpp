#include "engine/hook_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

extern char** environ;

namespace ferry {

namespace {

constexpr size_t kMaxOutput = 64 * 1024;

struct Attempt {
  int exit_code = -1;
  bool timed_out = false;
  std::string output;
};

// One run: fork, exec in its own process group, read output until exit or timeout.
Result<Attempt> run_once(const HookSpec& hook, const HookEnv& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return internal_error("pipe failed for hook " + hook.name);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& [k, v] : hook.env) env_strings.push_back(k + "=" + v);
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = hook.command;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return internal_error("fork failed for hook " + hook.name);
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execvpe(argv[0], argv.data(), envp.data());
    const char msg[] = "hook command could not be started\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  close(fds[1]);
  Attempt a;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(hook.timeout_ms);
  char buf[4096];
  bool open_pipe = true;
  while (open_pipe) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now()).count();
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

Result<HookResult> run_hook(const HookSpec& hook, const HookEnv& env, const Masker& masker) {
  if (hook.command.empty()) return invalid_argument("hook " + hook.name + " has no command");
  HookResult out;
  const auto t0 = std::chrono::steady_clock::now();
  const int max_attempts = 1 + std::clamp(hook.retries, 0, 3);
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    auto a = run_once(hook, env);
    if (!a.ok()) return a.status();
    out.attempts = attempt;
    out.exit_code = a->exit_code;
    out.timed_out = a->timed_out;
    out.output = masker.mask(a->output);
    if (!a->timed_out && a->exit_code == 0) break;
    const bool transient =
        !a->timed_out && std::find(hook.transient_exit_codes.begin(),
                                   hook.transient_exit_codes.end(),
                                   a->exit_code) != hook.transient_exit_codes.end();
    if (!transient || attempt == max_attempts) {
      out.duration_ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - t0).count();
      std::string why = a->timed_out ? "timed out after " + std::to_string(hook.timeout_ms) + " ms"
                                     : "exited with code " + std::to_string(a->exit_code);
      return Status(Code::kFailedPrecondition,
                    "hook " + hook.name + " " + why + " (attempt " + std::to_string(attempt) +
                        " of " + std::to_string(max_attempts) + "); last output: " +
                        last_lines(out.output, 5));
    }
    // transient: back off a little before the next attempt
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
  }
  out.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace ferry
