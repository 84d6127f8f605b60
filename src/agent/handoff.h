// Hot restart of the agent: the running agent hands its routers' listening sockets and
// counters to the next agent process over a Unix socket (SCM_RIGHTS), as HAProxy and
// Envoy do, so that no client connection is refused or dropped while the agent restarts.
//
// The socket is DATA_DIR/handoff.sock (mode 0600 in the 0700 data dir); a peer running as
// another user is refused (SO_PEERCRED). The protocol, one frame each way at a time
// (4-byte big-endian length, then JSON; at most kMaxFrameBytes; file descriptors ride on a
// frame's bytes):
//
//   successor → running  {"op":"takeover","version":1,"features":["lock","commit","api"]}
//   running   → successor {"listeners":[{"app","host","port","stats"}...],"fds":N} + N fds
//                         (several frames when there are many; the last has "last":true,
//                         "pid", "commit":true and "extras":["lock","api"], the descriptors
//                         after the listeners' ones: the data-dir lock and the agent API's
//                         listening socket)
//   successor → running  {"op":"ready"}   once the successor can serve
//   running   → successor {"op":"commit"} the successor is the agent now (or {"op":"abort"})
//
// and, once the previous process has drained, from it to the successor's socket:
//   previous  → successor {"op":"counts","listeners":[{"app","host","port","stats"}...]}
//                         what its routers counted after handing over (added, not replaced)
//
// Before it sends the sockets the running agent stops accepting (new connections wait in
// the kernel's backlog, which the successor then accepts), stops supervising and writes its
// state file. The data-dir lock is never released in between: the successor receives the
// locked file itself (flock belongs to the open file, which both processes then share), so
// a watchdog that starts an agent when the lock is free never sees it free.
//
// Who is the agent is decided on the running agent's handoff thread alone: "ready" before
// the deadline and "commit" sent → the successor; anything else (the successor silent, gone,
// or answering nonsense) → "abort" and the running agent resumes as before. "Sent" means
// the kernel took the frame into the successor's receive queue (send() succeeded); a
// "commit" that cannot be sent is an "abort". The successor neither supervises instances,
// writes the state file nor serves the agent API before "commit"; on "abort" it stops
// without touching the instances. When its own deadline for the answer passes, it
// withdraws with shutdown(SHUT_RD) before it leaves: from then on the kernel refuses every
// frame of the running agent (its "commit" fails with EPIPE, so it serves on), and a
// "commit" that got in before is still in the successor's queue, which it reads last and
// obeys. Both take the same socket lock in the kernel, so "the running agent's commit was
// sent" and "the successor reads commit" are one event: neither both nor none of them
// serve. If the connection ends without an answer while the running agent's process is
// gone (it crashed), the successor holds the lock and the sockets and goes on as the agent.
// A successor older than these features (no "features") gets the old behaviour: the lock
// is released before the sockets are sent and "ready" needs no answer.
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

// What the running agent hands over: the routers' listening sockets, the data-dir lock
// (its open file: the flock goes with it) and the agent API's listening socket (-1: none,
// the successor binds its own). Owned descriptors.
struct Handover {
  std::vector<HandedListener> listeners;
  int lock_fd = -1;
  int api_fd = -1;
};

// What a router counted between `before` and `after` (the same router, later), per
// release: counters and histogram buckets subtract, the latency samples are the ones taken
// since. A release missing from `before` counts whole. Nothing that went down (a counter
// reset) is reported.
std::vector<ReleaseStats> stats_since(const std::vector<ReleaseStats>& before,
                                      const std::vector<ReleaseStats>& after);

// Sends {"op":"counts"} to the agent at `path` (the successor); errors name the path.
Status send_final_counts(const std::string& path, const std::vector<HandedListener>& counts,
                         int timeout_ms);

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
    // Stop accepting and supervising, save the state; return what to send (the server
    // closes every descriptor in it once sent). `shares_lock`: the successor takes the
    // locked file (else the running agent must release the lock here).
    std::function<Result<Handover>(bool shares_lock)> begin;
    // The successor serves: drain and exit (called on the handoff thread).
    std::function<void()> done;
    // The successor failed before "ready": take the lock back and serve as before.
    std::function<void(const std::string& why)> abort;
    // The previous process's last counts ({"op":"counts"}) from the peer `pid`.
    std::function<Status(int pid, std::vector<HandedListener> counts)> counts;
    // Test seam (tests/agent/handoff_test.cpp): runs between the successor's "ready" and
    // the "commit", to put the decision at the successor's deadline. Unset in ferry.
    std::function<void()> before_commit;
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
  void serve(int conn, int pid);
  void serve_counts(int conn, int pid, const Json& req);

  std::string path_;
  Hooks hooks_;
  int ready_timeout_ms_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> handed_over_{false};
  std::thread thread_;
};

// The successor's side: asks the agent at `path` for its sockets. On success the caller
// owns the listeners' fds, lock_fd() and api_fd() and must call ready() once it can serve
// (or drop the object, which makes the running agent resume).
class HandoffClient {
 public:
  // kNotFound when no agent listens at `path` (start afresh); any other error means a
  // running agent did not hand over (it keeps serving).
  static Result<HandoffClient> take_over(const std::string& path, int timeout_ms);
  HandoffClient(HandoffClient&& o) noexcept;
  HandoffClient& operator=(HandoffClient&&) = delete;
  ~HandoffClient();

  std::vector<HandedListener>& listeners() { return listeners_; }
  // The locked data-dir lock file and the agent API's listening socket of the running
  // agent (-1 when it did not send one); take them with std::exchange to own them.
  int& lock_fd() { return lock_fd_; }
  int& api_fd() { return api_fd_; }
  int predecessor_pid() const { return pid_; }
  // Tells the running agent we can serve and waits up to `timeout_ms` for its decision.
  // Ok: we are the agent (it committed, or its process is gone and we hold the lock).
  // kFailedPrecondition: it resumed (it gave up waiting for us); kDeadlineExceeded or
  // kUnavailable: no answer while it still runs. On any error this process must stop
  // without touching the instances or the state file.
  Status ready(int timeout_ms);

  // Test seams (tests/agent/handoff_test.cpp): run on the caller's thread inside ready()
  // once its deadline has passed, before and after it withdraws. Unset in ferry.
  struct DecisionHooks {
    std::function<void()> deadline_passed;
    std::function<void()> withdrawn;
  };
  void set_decision_hooks(DecisionHooks hooks) { decision_hooks_ = std::move(hooks); }

 private:
  HandoffClient() = default;
  // No decision by our deadline: refuses the running agent's later frames and returns the
  // one it sent before, if any (else `why`).
  Result<Json> withdraw(Status why);

  int sock_ = -1;
  int lock_fd_ = -1;
  int api_fd_ = -1;
  int pid_ = 0;
  bool commit_ = false;  // the running agent answers "ready" (it knows the features)
  std::vector<HandedListener> listeners_;
  DecisionHooks decision_hooks_;
};

}  // namespace ferry
