// HTTP/1.1 over a Unix socket: the local agent's API (server side) and its client. The
// socket lives inside the server's 0700 data dir and is created 0600, so only ferry's
// own user reaches the agent; the bearer token is still required on every call.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/http_server.h"
#include "common/http_types.h"
#include "common/status.h"

namespace ferry {

// Serves the routes and middleware of `routes` (never started itself: its dispatch() is
// used) on the Unix socket `path`. A stale socket file is replaced; a peer running as
// another user (SO_PEERCRED) is refused. `routes` must outlive the server.
class UnixHttpServer {
 public:
  UnixHttpServer(std::string path, HttpServer& routes, size_t max_body_bytes = 16u << 20);
  ~UnixHttpServer();
  UnixHttpServer(const UnixHttpServer&) = delete;
  UnixHttpServer& operator=(const UnixHttpServer&) = delete;

  // Binds (mode 0600) and serves on two threads. An error names the path. With
  // `inherited_fd` (a hot restart, agent/handoff.h): serves on that listening socket, bound
  // at `path` by the previous agent process, whose queued connections are served here.
  Status start(int inherited_fd = -1);
  // Stops accepting, closes connections, joins threads and removes the socket file (unless
  // `remove_file` is false: the next agent process serves on it).
  void stop(bool remove_file = true);
  // Hot restart: stop accepting (connections wait in the backlog) and wait up to
  // `wait_ms` for the requests in progress to be answered; resume() accepts again.
  // Returns how many connections were still open when it gave up waiting.
  int pause(int wait_ms);
  void resume();
  // A close-on-exec duplicate of the listening socket (-1 when not serving).
  int duplicate_listener() const;
  const std::string& path() const { return path_; }

  struct Impl;

 private:
  std::string path_;
  HttpServer& routes_;
  size_t max_body_;
  std::unique_ptr<Impl> impl_;
};

// One HTTP request over the Unix socket `path` within `timeout_ms`. Transport failures are
// kUnavailable / kDeadlineExceeded; any HTTP status is a response.
Result<HttpResponse> unix_http_request(
    const std::string& path, std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body,
    int timeout_ms, size_t max_response_bytes);

// "unix:/path/agent.sock" → "/path/agent.sock"; "" for anything else.
std::string unix_socket_path(std::string_view address);

}  // namespace ferry
