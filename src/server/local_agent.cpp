#include "server/local_agent.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "agent/agent_server.h"
#include "common/crypto.h"

namespace ferry {

LocalAgent::LocalAgent(std::string ferry_binary, std::string data_dir, Endpoint listen,
                       std::vector<std::string> private_env)
    : binary_(std::move(ferry_binary)),
      data_dir_(std::move(data_dir)),
      listen_(std::move(listen)),
      private_env_(std::move(private_env)) {}

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

bool LocalAgent::healthy() const {
  HttpClient c(listen_, HttpClientOptions{500, 1 << 20});
  c.set_header("Authorization", "Bearer " + token_);
  // /v1/apps needs the token: an agent answering it is ours.
  return c.call("GET", "/v1/apps").ok();
}

namespace {

// True when nothing listens on `ep` (connection refused): the agent is gone, not slow.
bool nothing_listens(const Endpoint& ep) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &res) != 0 || !res)
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

}  // namespace

Result<bool> LocalAgent::restart_if_down() {
  if (healthy()) return false;
  // A busy agent (a slow answer) is left alone: only one that exited or stopped listening
  // is started again, so two agents never run on one data dir.
  int code;
  const bool exited = proc_.pid > 0 && reap_child(proc_.pid, &code);
  if (exited) proc_ = {};
  if (!exited && !nothing_listens(listen_)) return false;
  if (Status s = ensure_running(); !s.ok()) return s;
  return true;
}

Status LocalAgent::ensure_running() {
  if (Status s = load_or_create_token(); !s.ok()) return s;
  if (healthy()) return Status::Ok();
  ProcessLaunch l;
  l.argv = {binary_,        "agent",
            "--listen",     listen_.to_string(),
            "--data-dir",   data_dir_ + "/agent",
            "--token-file", data_dir_ + "/agent.token"};
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
  return unavailable("the local agent did not answer on " + listen_.to_string() +
                     " within 5 s; see " + data_dir_ + "/agent.log");
}

}  // namespace ferry
