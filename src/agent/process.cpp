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

#include "common/crypto.h"
#include "common/spawn.h"

namespace ferry {

std::string expand_vars(const std::string& text, const std::map<std::string, std::string>& vars) {
  return expand_vars_with(text, [&](const std::string& name) -> std::string {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    if (const char* v = std::getenv(name.c_str())) return v;
    return {};
  });
}

std::string instance_work_dir(const std::string& agent_data_dir, const std::string& app,
                              const std::string& instance) {
  std::string root;
  if (const char* d = std::getenv("FERRY_INSTANCES_DIR"); d && *d)
    root = d;
  else if (can_switch_users())
    root = "/var/lib/ferry-instances/" +
           sha256_hex(std::filesystem::weakly_canonical(agent_data_dir).string()).substr(0, 12);
  else
    root = agent_data_dir + "/instances";
  return root + "/" + app + "/" + instance;
}

namespace {

// Makes `dir` owned by `user` with mode 0700: the instance's own place. Its parent and
// grandparent (<root>/<app>) are made traversable (0711) whatever the umask, so the user
// can reach its own directory and list nothing else.
Status make_work_dir(const std::string& dir, const std::optional<RunAs>& user) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return invalid_argument("cannot create working directory " + dir + ": " + ec.message());
  if (user) {
    const std::filesystem::path app_dir = std::filesystem::path(dir).parent_path();
    for (const auto& p : {app_dir.parent_path(), app_dir})
      std::filesystem::permissions(p,
                                   std::filesystem::perms::owner_all |
                                       std::filesystem::perms::group_exec |
                                       std::filesystem::perms::others_exec,
                                   std::filesystem::perm_options::replace, ec);
  }
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return invalid_argument("cannot open working directory " + dir + ": " + std::strerror(errno));
  int rc = 0;
  if (user) rc = fchown(fd, user->uid, user->gid);
  if (rc == 0) rc = fchmod(fd, 0700);
  const int e = errno;
  close(fd);
  if (rc != 0)
    return invalid_argument("cannot give working directory " + dir +
                            " to its user: " + std::strerror(e));
  return Status::Ok();
}

}  // namespace

uint64_t process_start_ticks(int pid) {
  const std::vector<std::string> f = proc_stat_fields(pid);
  if (f.size() < 20 || f[0] == "Z") return 0;  // a zombie is gone for our purposes
  return std::strtoull(f[19].c_str(), nullptr, 10);
}

std::string read_proc_file(int pid, const char* what) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + what;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < (1u << 20);)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::vector<std::string> proc_stat_fields(int pid) {
  const std::string line = read_proc_file(pid, "stat");
  const size_t rp = line.rfind(')');
  if (rp == std::string::npos || rp + 2 > line.size()) return {};
  std::vector<std::string> out;
  std::istringstream rest(line.substr(rp + 2));
  for (std::string field; rest >> field;) out.push_back(std::move(field));
  return out;
}

Result<ProcessHandle> start_process(const ProcessLaunch& launch) {
  if (launch.argv.empty() || launch.argv[0].empty()) return invalid_argument("empty command");
  SpawnOptions o;
  o.argv = launch.argv;
  o.env = launch.env;
  o.cwd = launch.cwd;
  o.new_session = true;
  if (launch.app_code) {
    std::string user = launch.user;
    if (user.empty() && can_switch_users()) user = kDefaultAppUser;
    if (!user.empty()) {
      auto who = lookup_user(user);
      if (!who.ok()) return who.status();
      if (who->uid != geteuid()) {
        if (!can_switch_users())
          return invalid_argument("run.user '" + user +
                                  "' needs the agent to run as root or with CAP_SETUID and "
                                  "CAP_SETGID (docs/operations.md)");
        o.user = *who;
      }
    }
    if (!launch.work_dir.empty()) {
      FERRY_RETURN_IF_ERROR(make_work_dir(launch.work_dir, o.user));
      if (o.cwd.empty()) o.cwd = launch.work_dir;
    }
  } else {
    o.inherit_parent_env = true;
    o.unset_env = launch.unset_env;
  }
  int log_fd = -1;
  if (!launch.log_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(launch.log_path).parent_path(), ec);
    log_fd = open(launch.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0)
      return internal_error("cannot open log file " + launch.log_path + ": " +
                            std::strerror(errno));
  }
  o.stdout_fd = log_fd;
  auto pid = spawn(o);
  if (log_fd >= 0) close(log_fd);
  if (!pid.ok()) return pid.status();
  ProcessHandle h;
  h.pid = *pid;
  h.start_ticks = process_start_ticks(*pid);
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
