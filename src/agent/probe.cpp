#include "agent/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "agent/process.h"
#include "common/http_client.h"

namespace ferry {

namespace {

ProbeResult tcp_probe(const std::string& host, uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return {false, "cannot resolve " + host};
  const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return {false, "socket failed"};
  }
  int r = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  ProbeResult out{true, ""};
  if (r != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    r = poll(&p, 1, timeout_ms);
    if (r == 0) {
      out = {false, "tcp connect to port " + std::to_string(port) + " timed out"};
    } else {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0)
        out = {false, "tcp connect to port " + std::to_string(port) + ": " + std::strerror(err)};
    }
  } else if (r != 0) {
    out = {false, "tcp connect to port " + std::to_string(port) + ": " + std::strerror(errno)};
  }
  close(fd);
  return out;
}

ProbeResult http_probe(const ProbeSpec& p, const std::string& host, uint16_t port) {
  HttpClientOptions o;
  o.timeout_ms = p.timeout_ms;
  o.max_response_bytes = 64 * 1024;
  HttpClient c(Endpoint{host, port}, o);
  auto r = c.request("GET", p.path.empty() ? "/" : p.path);
  if (!r.ok()) return {false, "GET " + p.path + ": " + r.status().message()};
  const int s = r->status;
  const bool ok = p.expect_status == 0 ? (s >= 200 && s < 300) : s == p.expect_status;
  if (ok) return {true, ""};
  return {false, "GET " + p.path + " answered " + std::to_string(s)};
}

ProbeResult command_probe(const ProbeSpec& p, const std::map<std::string, std::string>& env) {
  if (p.command.empty()) return {false, "probe command is empty"};
  ProcessLaunch l;
  l.argv = p.command;
  l.env = env;
  l.log_path = "/dev/null";
  l.app_code = true;  // the app's command: clean environment, not the agent's user when root
  auto h = start_process(l);
  if (!h.ok()) return {false, h.status().message()};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(p.timeout_ms);
  int code = 0;
  while (!reap_child(h->pid, &code)) {
    if (std::chrono::steady_clock::now() > deadline) {
      signal_group(*h, SIGKILL);
      int status;
      waitpid(h->pid, &status, 0);
      return {false, "probe command timed out after " + std::to_string(p.timeout_ms) + " ms"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (code == 0) return {true, ""};
  return {false, "probe command exited with " + std::to_string(code)};
}

}  // namespace

ProbeResult run_probe(const ProbeSpec& probe, const std::string& host, uint16_t port,
                      const std::map<std::string, std::string>& env) {
  switch (probe.kind) {
    case ProbeSpec::Kind::kNone:
      return {true, ""};
    case ProbeSpec::Kind::kTcp:
      return tcp_probe(host, port, probe.timeout_ms);
    case ProbeSpec::Kind::kHttp:
      return http_probe(probe, host, port);
    case ProbeSpec::Kind::kCommand:
      return command_probe(probe, env);
  }
  return {false, "unknown probe kind"};
}

}  // namespace ferry
