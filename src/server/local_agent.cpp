#include "server/local_agent.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/agent_server.h"
#include "agent/unix_http.h"
#include "common/crypto.h"

namespace ferry {

LocalAgent::LocalAgent(std::string ferry_binary, std::string data_dir, std::string address,
                       std::vector<std::string> private_env, LocalAgentSpec settings)
    : binary_(std::move(ferry_binary)),
      data_dir_(std::move(data_dir)),
      address_(std::move(address)),
      private_env_(std::move(private_env)),
      settings_(std::move(settings)) {
  if (address_.empty()) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(data_dir_, ec);
    address_ = "unix:" + (ec ? data_dir_ : abs.lexically_normal().string()) + "/agent.sock";
  }
}

LocalAgent::~LocalAgent() {
  if (pidfd_ >= 0) close(pidfd_);
}

bool LocalAgent::wait_for_exit(int timeout_ms) {
  int pid = proc_.pid;
  if (pid <= 0) {
    // Not our child (reused at start, or the successor of a hot restart): its pid file.
    std::ifstream f(data_dir_ + "/agent/agent.pid");
    long v = 0;
    if (f >> v && v > 1 && v < (1L << 22)) pid = static_cast<int>(v);
  }
  if (pid != watched_pid_) {
    if (pidfd_ >= 0) close(pidfd_);
    pidfd_ = -1;
    watched_pid_ = pid;
#ifdef SYS_pidfd_open
    if (pid > 0) pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#endif
  }
  if (pidfd_ < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return false;
  }
  pollfd p{pidfd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  close(pidfd_);
  pidfd_ = -1;
  watched_pid_ = 0;
  int code;
  if (proc_.pid > 0 && reap_child(proc_.pid, &code)) proc_ = {};
  return true;
}

Status LocalAgent::load_or_create_token() {
  const std::string path = data_dir_ + "/agent.token";
  if (std::filesystem::exists(path)) {
    auto t = read_token_file(path);
    if (!t.ok()) return t.status();
    token_ = *t;
    return Status::Ok();
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir_, ec);
  token_ = to_hex(random_bytes(24));
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot create " + path);
  const std::string line = token_ + "\n";
  const bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!ok) return internal_error("cannot write " + path);
  return Status::Ok();
}

std::unique_ptr<HttpAgentClient> LocalAgent::client(int timeout_ms) const {
  const std::string path = unix_socket_path(address_);
  if (!path.empty())
    return std::make_unique<HttpAgentClient>(HttpAgentClient::UnixSocket{path}, token_, timeout_ms,
                                             "local");
  auto ep = parse_endpoint(address_);
  return std::make_unique<HttpAgentClient>(ep.ok() ? *ep : Endpoint{}, token_, timeout_ms, "local");
}

bool LocalAgent::healthy() const {
  // /v1/apps needs the token: an agent answering it is ours.
  return client(500)->list_apps().ok();
}

// True when nothing listens at the address (refused, or no socket file): the agent is gone,
// not slow.
bool LocalAgent::nothing_listens() const {
  const std::string path = unix_socket_path(address_);
  if (!path.empty()) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return false;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const bool gone = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 &&
                      (errno == ECONNREFUSED || errno == ENOENT);
    close(fd);
    return gone;
  }
  auto ep = parse_endpoint(address_);
  if (!ep.ok()) return false;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(ep->host.c_str(), std::to_string(ep->port).c_str(), &hints, &res) != 0 || !res)
    return false;
  const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool refused = false;
  if (fd >= 0) {
    refused = connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == ECONNREFUSED;
    close(fd);
  }
  freeaddrinfo(res);
  return refused;
}

bool LocalAgent::agent_holds_lock() const {
  const int fd = open((data_dir_ + "/agent/agent.lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);  // lets go of the shared lock if we got it
  return held;
}

Result<bool> LocalAgent::restart_if_down() {
  if (healthy()) return false;
  // A busy agent (a slow answer) is left alone: only one that exited or stopped listening
  // is started again, so two agents never run on one data dir.
  int code;
  const bool exited = proc_.pid > 0 && reap_child(proc_.pid, &code);
  if (exited) proc_ = {};
  if (!exited && !nothing_listens()) return false;
  // An agent process holds the data dir: it is handing over to its next process (the API
  // pauses for that), not gone.
  if (agent_holds_lock()) return false;
  if (Status s = ensure_running(); !s.ok()) return s;
  return true;
}

Status LocalAgent::ensure_running() {
  if (unix_socket_path(address_).empty() && !parse_endpoint(address_).ok())
    return invalid_argument("local agent address '" + address_ +
                            "' must be unix:PATH or HOST:PORT");
  if (Status s = load_or_create_token(); !s.ok()) return s;
  if (healthy()) return Status::Ok();
  ProcessLaunch l;
  l.argv = {binary_,
            "agent",
            "--listen",
            address_,
            "--data-dir",
            data_dir_ + "/agent",
            "--token-file",
            data_dir_ + "/agent.token",
            "--instance-ports",
            settings_.instance_ports,
            "--log-keep",
            std::to_string(settings_.log_keep),
            "--log-max-bytes",
            std::to_string(settings_.log_max_bytes)};
  l.log_path = data_dir_ + "/agent.log";
  l.unset_env = private_env_;
  auto h = start_process(l);
  if (!h.ok()) return h.status().with_context("starting the local agent");
  proc_ = *h;
  for (int i = 0; i < 100; ++i) {
    if (healthy()) return Status::Ok();
    int code;
    if (reap_child(proc_.pid, &code)) {
      proc_ = {};
      return unavailable("the local agent exited with code " + std::to_string(code) +
                         " at start; see " + data_dir_ + "/agent.log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return unavailable("the local agent did not answer on " + address_ + " within 5 s; see " +
                     data_dir_ + "/agent.log");
}

}  // namespace ferry
