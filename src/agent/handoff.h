// Hot restart of the agent: the running agent hands its routers' listening sockets and
// counters to the next agent process over a Unix socket (SCM_RIGHTS), as HAProxy and
// Envoy do, so that no client connection is refused or dropped while the agent restarts.
//
// The socket is DATA_DIR/handoff.sock (mode 0600 in the 0700 data dir); a peer running as
// another user is refused (SO_PEERCRED). The protocol, one frame each way at a time
// (4-byte big-endian length, then JSON; at most kMaxFrameBytes; file descriptors ride on a
// frame's bytes):
//
//   successor → running  {"op":"takeover","version":1}
//   running   → successor {"listeners":[{"app","host","port","stats"}...],"fds":N} + N fds
//                         (several frames when there are many; the last has "last":true)
//   successor → running  {"op":"ready"}   once the successor serves (routers and API)
//
// Before it sends the sockets the running agent stops accepting (new connections wait in
// the kernel's backlog, which the successor then accepts), stops supervising, writes its
// state file and lets go of the data-dir lock. After "ready" it drains its open
// connections (every response closes its connection) for a bounded time and exits. If the
// successor goes away or stays silent before "ready", the running agent takes the lock back
// and resumes as before: a failed hot restart changes nothing for clients.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "core/agent_api.h"

namespace ferry {

inline constexpr size_t kMaxFrameBytes = 8u << 20;
inline constexpr size_t kMaxHandoffListeners = 4096;

// One router's listening socket on its way to the next process.
struct HandedListener {
  std::string app;
  std::string host;
  uint16_t port = 0;
  int fd = -1;  // owned by whoever holds the struct (close_all)
  std::vector<ReleaseStats> stats;
};
void close_all(std::vector<HandedListener>& listeners);

// Frames over a connected Unix stream socket; `fds` go with the frame. Errors name what
// was wrong (too large, short, not JSON, more descriptors than announced).
Status send_frame(int sock, const Json& body, const std::vector<int>& fds = {});
// Waits up to `timeout_ms` for a whole frame; descriptors received are close-on-exec and
// appended to `fds` (the caller owns them, also on error).
Result<Json> recv_frame(int sock, int timeout_ms, std::vector<int>* fds = nullptr);

// The running agent's side: a thread that answers one successor at a time.
class HandoffServer {
 public:
  struct Hooks {
    // Stop accepting and supervising, save the state, release the lock; return the
    // listeners to send (the server closes their fds once sent).
    std::function<Result<std::vector<HandedListener>>()> begin;
    // The successor serves: drain and exit (called on the handoff thread).
    std::function<void()> done;
    // The successor failed before "ready": take the lock back and serve as before.
    std::function<void(const std::string& why)> abort;
  };
  HandoffServer(std::string path, Hooks hooks, int ready_timeout_ms = 15'000);
  ~HandoffServer();
  HandoffServer(const HandoffServer&) = delete;
  HandoffServer& operator=(const HandoffServer&) = delete;

  // Binds the socket (a stale file is replaced) and starts the thread.
  Status start();
  void stop();
  const std::string& path() const { return path_; }

 private:
  void loop();
  void serve(int conn);

  std::string path_;
  Hooks hooks_;
  int ready_timeout_ms_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> handed_over_{false};
  std::thread thread_;
};

// The successor's side: asks the agent at `path` for its sockets. On success the caller
// owns the listeners' fds and must call ready() once it serves (or drop the object, which
// makes the running agent resume).
class HandoffClient {
 public:
  // kNotFound when no agent listens at `path` (start afresh); any other error means a
  // running agent did not hand over (it keeps serving).
  static Result<HandoffClient> take_over(const std::string& path, int timeout_ms);
  HandoffClient(HandoffClient&& o) noexcept;
  HandoffClient& operator=(HandoffClient&&) = delete;
  ~HandoffClient();

  std::vector<HandedListener>& listeners() { return listeners_; }
  // Tells the running agent to drain and exit.
  Status ready();

 private:
  HandoffClient() = default;
  int sock_ = -1;
  std::vector<HandedListener> listeners_;
};

}  // namespace ferry
