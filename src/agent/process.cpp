#include "agent/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace ferry {

std::string expand_vars(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(text.size());
  auto lookup = [&](const std::string& name) -> std::string {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    if (const char* v = std::getenv(name.c_str())) return v;
    return {};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out += c;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (text[i + 1] == '{') {
      const size_t end = text.find('}', i + 2);
      if (end == std::string::npos) {
        out += text.substr(i);
        break;
      }
      out += lookup(text.substr(i + 2, end - i - 2));
      i = end;
    } else if (std::isalpha(static_cast<unsigned char>(text[i + 1])) || text[i + 1] == '_') {
      size_t j = i + 1;
      while (j < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_'))
        ++j;
      out += lookup(text.substr(i + 1, j - i - 1));
      i = j - 1;
    } else {
      out += c;
    }
  }
  return out;
}

uint64_t process_start_ticks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  // The command name (field 2) is in parentheses and may contain spaces: skip past the last ')'.
  const size_t rp = line.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream rest(line.substr(rp + 2));
  std::string field;
  // Fields after the name start at 3 (state); start time is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return 0;
    if (i == 3 && field == "Z") return 0;  // a zombie is gone for our purposes
  }
  return std::strtoull(field.c_str(), nullptr, 10);
}

Result<ProcessHandle> start_process(const ProcessLaunch& launch) {
  if (launch.argv.empty() || launch.argv[0].empty()) return invalid_argument("empty command");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    const auto name = kv.substr(0, kv.find('='));
    if (launch.env.count(std::string(name))) continue;
    if (std::find(launch.unset_env.begin(), launch.unset_env.end(), name) != launch.unset_env.end())
      continue;
    env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : launch.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = launch.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd = -1;
  if (!launch.log_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(launch.log_path).parent_path(), ec);
    log_fd = open(launch.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0)
      return internal_error("cannot open log file " + launch.log_path + ": " +
                            std::strerror(errno));
  }
  // A pipe closed on exec tells the parent whether exec worked.
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    if (log_fd >= 0) close(log_fd);
    return internal_error("pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) close(log_fd);
    close(exec_pipe[0]);
    close(exec_pipe[1]);
    return internal_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    // Listening sockets and files of the agent must not leak into the instance.
    const unsigned keep = static_cast<unsigned>(exec_pipe[1]);
    if (keep > 3) syscall(SYS_close_range, 3u, keep - 1, 0u);
    syscall(SYS_close_range, keep + 1, ~0u, 0u);
    if (!launch.cwd.empty() && chdir(launch.cwd.c_str()) != 0) {
      const int e = errno;
      (void)!write(exec_pipe[1], &e, sizeof e);
      _exit(127);
    }
    execvpe(argv[0], argv.data(), envp.data());
    const int e = errno;
    (void)!write(exec_pipe[1], &e, sizeof e);
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  close(exec_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  while ((n = read(exec_pipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  close(exec_pipe[0]);
  if (n > 0) {
    int status;
    waitpid(pid, &status, 0);
    return invalid_argument("cannot start '" + launch.argv[0] + "'" +
                            (launch.cwd.empty() ? "" : " in " + launch.cwd) + ": " +
                            std::strerror(child_errno));
  }
  ProcessHandle h;
  h.pid = pid;
  h.start_ticks = process_start_ticks(pid);
  return h;
}

bool process_alive(const ProcessHandle& p) {
  if (p.pid <= 0) return false;
  if (kill(p.pid, 0) != 0 && errno == ESRCH) return false;
  const uint64_t t = process_start_ticks(p.pid);
  return t != 0 && (p.start_ticks == 0 || t == p.start_ticks);
}

void signal_group(const ProcessHandle& p, int sig) {
  if (p.pid <= 0) return;
  if (kill(-p.pid, sig) != 0) kill(p.pid, sig);
}

bool reap_child(int pid, int* exit_code) {
  int status = 0;
  const pid_t r = waitpid(pid, &status, WNOHANG);
  if (r != pid) return false;
  if (WIFEXITED(status))
    *exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    *exit_code = -WTERMSIG(status);
  return true;
}

}  // namespace ferry
