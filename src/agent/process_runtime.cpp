#include "agent/process_runtime.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace ferry {

namespace fs = std::filesystem;

ProcessRuntime::ProcessRuntime(std::string log_dir, LogPolicy policy)
    : log_dir_(std::move(log_dir)), policy_(policy) {}

Result<ProcessHandle> ProcessRuntime::spawn(const ProcessLaunch& launch) {
  return start_process(launch);
}

std::string ProcessRuntime::log_path(const std::string& app, const std::string& instance) const {
  return log_dir_ + "/" + app + "/" + instance + ".log";
}

Result<RuntimeHandle> ProcessRuntime::start(const LaunchSpec& launch) {
  if (!launch.image.empty() && launch.argv.empty())
    return invalid_argument("the process runtime cannot run image " + launch.image);
  ProcessLaunch l;
  l.argv = launch.argv;
  l.env = launch.env;
  l.cwd = launch.cwd;
  l.log_path = log_path(launch.app, launch.instance);  // rotated by housekeeping(), not here
  // App code: a clean environment, run.user (ferry-app by default as root), its own dir.
  l.app_code = true;
  l.user = launch.user;
  l.work_dir =
      instance_work_dir(fs::path(log_dir_).parent_path().string(), launch.app, launch.instance);
  auto p = spawn(l);
  if (!p.ok()) return p.status();
  {
    std::lock_guard lk(mu_);
    children_.insert(p->pid);
  }
  return RuntimeHandle{p->pid, p->start_ticks, ""};
}

std::optional<int> ProcessRuntime::exit_status(const RuntimeHandle& h) {
  if (h.pid <= 0) return kExitUnknown;
  bool child;
  {
    std::lock_guard lk(mu_);
    child = children_.count(h.pid) > 0;
  }
  if (child) {
    int code = 0;
    if (!reap_child(h.pid, &code)) return std::nullopt;
    std::lock_guard lk(mu_);
    children_.erase(h.pid);
    return code;
  }
  if (process_alive(ProcessHandle{h.pid, h.start_ticks})) return std::nullopt;
  return kExitUnknown;
}

namespace {

// Readable at once: for an instance that ended before it could be watched (an adopted
// process killed, a zombie not ours to reap), so its owner looks now instead of polling.
int ended_fd() {
  return eventfd(1, EFD_CLOEXEC);
}

}  // namespace

int ProcessRuntime::exit_fd(const RuntimeHandle& h) {
  if (h.pid <= 0) return -1;
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, h.pid, 0));  // close-on-exec
  if (fd < 0) return errno == ESRCH ? ended_fd() : -1;
  // An unreaped child of ours keeps its pid. Any other pid may have been reused since the
  // process we mean ended: the pidfd names ours only if that process still runs after it
  // was taken (same start time).
  bool child;
  {
    std::lock_guard lk(mu_);
    child = children_.count(h.pid) > 0;
  }
  if (!child && !process_alive(ProcessHandle{h.pid, h.start_ticks})) {
    close(fd);
    return ended_fd();
  }
  return fd;
}

void ProcessRuntime::stop(const RuntimeHandle& h, StopMode mode) {
  signal_group(ProcessHandle{h.pid, h.start_ticks}, mode == StopMode::kKill ? SIGKILL : SIGTERM);
}

bool ProcessRuntime::alive(const RuntimeHandle& h) {
  return process_alive(ProcessHandle{h.pid, h.start_ticks});
}

bool ProcessRuntime::adopt(const RuntimeHandle& h) {
  // Not our child: exit_status() polls /proc for it instead of waitpid.
  return h.pid > 0 && process_alive(ProcessHandle{h.pid, h.start_ticks});
}

void rotate_log_file(const std::string& path, uint64_t max_bytes, int keep) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size <= max_bytes) return;
  keep = std::max(1, keep);
  fs::remove(path + "." + std::to_string(keep), ec);
  for (int i = keep - 1; i >= 1; --i)
    fs::rename(path + "." + std::to_string(i), path + "." + std::to_string(i + 1), ec);
  fs::copy_file(path, path + ".1", fs::copy_options::overwrite_existing, ec);
  if (!ec) (void)!truncate(path.c_str(), 0);
}

namespace {

// The instance a log file belongs to: "web-v1-0.log" and "web-v1-0.log.3" → "web-v1-0".
std::string instance_of(const std::string& file) {
  const size_t at = file.rfind(".log");
  return at == std::string::npos ? file : file.substr(0, at);
}

// Removes the files of instances not in `current`, keeping the newest `keep` such instances.
void prune_gone(const fs::path& dir, const std::set<std::string>& current, int keep) {
  std::error_code ec;
  std::map<std::string, fs::file_time_type> gone;  // instance → newest write
  std::vector<std::pair<std::string, fs::path>> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    const std::string inst = instance_of(e.path().filename().string());
    if (current.count(inst)) continue;
    const auto t = e.last_write_time(ec);
    auto [it, fresh] = gone.emplace(inst, t);
    if (!fresh) it->second = std::max(it->second, t);
    files.emplace_back(inst, e.path());
  }
  if (static_cast<int>(gone.size()) <= keep) return;
  std::vector<std::pair<fs::file_time_type, std::string>> order;
  for (const auto& [inst, t] : gone) order.emplace_back(t, inst);
  std::sort(order.rbegin(), order.rend());  // newest first
  std::set<std::string> drop;
  for (size_t i = static_cast<size_t>(keep); i < order.size(); ++i) drop.insert(order[i].second);
  for (const auto& [inst, p] : files)
    if (drop.count(inst)) fs::remove(p, ec);
}

}  // namespace

void ProcessRuntime::housekeeping(const std::string& app, const std::vector<std::string>& current) {
  for (const auto& inst : current)
    rotate_log_file(log_path(app, inst), policy_.max_bytes, policy_.keep);
  prune_gone(fs::path(log_dir_) / app, {current.begin(), current.end()}, policy_.keep);
}

}  // namespace ferry
