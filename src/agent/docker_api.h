// DockerApi: the few Docker Engine API calls ferry makes, as HTTP/1.1 over dockerd's Unix
// socket (Boost.Beast; never the docker CLI). API version 1.41 (Docker 20.10, Debian
// bookworm's docker.io) and later.
//
// Errors a caller must handle: kUnavailable when dockerd cannot be reached (the message
// says whether the socket is missing — dockerd not running — or refused us — permission
// denied: the agent's user is not in group docker); kDeadlineExceeded on a timeout;
// otherwise a response with dockerd's own status and message (docker_message()).
//
// Thread safety: every method may be called from any thread at once; each call opens its
// own connection.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/http_types.h"  // url_encode
#include "common/json.h"
#include "common/status.h"

namespace ferry {

struct DockerResponse {
  int status = 0;
  std::string body;
};

class DockerApi {
 public:
  // `socket_path`: dockerd's socket (socket_from_env()); `timeout_ms` bounds one call.
  explicit DockerApi(std::string socket_path, int timeout_ms = 15'000);

  // DOCKER_HOST when it is unix://PATH, else /var/run/docker.sock. kInvalidArgument for a
  // DOCKER_HOST of another scheme (tcp:// is not supported: the agent talks to its own
  // host's dockerd only).
  static Result<std::string> socket_from_env();

  const std::string& socket_path() const { return socket_; }

  // One call; `target` starts with "/" and is sent under /v1.41. `timeout_ms` 0: the default.
  Result<DockerResponse> call(std::string_view method, std::string_view target,
                              std::string_view body = {},
                              std::string_view content_type = "application/json",
                              int timeout_ms = 0) const;
  // call() whose answer must be 2xx and JSON (an empty body is null); anything else is an
  // error carrying dockerd's message and `what`.
  Result<Json> json(std::string_view method, std::string_view target, const std::string& what,
                    std::string_view body = {}) const;

  // Streams a response body (GET `target`) to `on_data` until the body ends (Ok), the
  // connection fails, or `on_data` returns false. `*fd_out` is set to the connection's
  // descriptor while it streams (-1 after) so another thread can shutdown() it to end the
  // stream early; the caller guards it.
  Status stream(std::string_view target, const std::function<bool(std::string_view)>& on_data,
                std::atomic<int>* fd_out) const;

  // GET /containers/ID/json. kNotFound when dockerd has no such container.
  Result<Json> inspect(const std::string& id) const;

 private:
  std::string socket_;
  int timeout_ms_;
};

// The "message" of a Docker error body, else the body's first 200 bytes.
std::string docker_message(const DockerResponse& r);

// Splits Docker's multiplexed log stream (8-byte headers: stream, 0, 0, 0, big-endian
// size) into the payload bytes, across arbitrary read boundaries.
class LogDemux {
 public:
  // Appends the payload found in `data` to `*out`.
  void feed(std::string_view data, std::string* out);

 private:
  unsigned char header_[8] = {};
  size_t header_have_ = 0;
  uint32_t frame_left_ = 0;
};

}  // namespace ferry
