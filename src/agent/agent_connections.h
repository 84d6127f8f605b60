// AgentConnections: the server's kept-alive HTTP/1.1 connections to one agent (plain TCP or
// mutual TLS), reused across calls instead of a connection and a full TLS handshake per
// call (issue 16; docs/operations.md, "Connections to agents").
//
// - At most `max_connections` are open at once (checked out or idle); a caller beyond that
//   waits for one within its own deadline. An idle connection is reused only when it was
//   made with the same TlsContext (a new server certificate or a re-enrollment makes a new
//   context, so connections from before it are closed), it has been idle less than
//   `max_idle_ms`, the peer has not closed it (or sent anything unasked: a stray answer can
//   never be read as the next call's), and, with TLS, the agent's certificate is not
//   revoked now (the list is read live): a connection to an agent revoked after its
//   handshake is closed, and the new handshake refuses the agent.
// - Each call has one deadline (`timeout_ms`) for all of it: waiting for a connection,
//   connect, handshake, sending and the whole answer; an agent that trickles its answer
//   (slowloris) cannot stretch it. An answer over `max_response_bytes`, malformed, or
//   followed by bytes nobody asked for closes the connection.
// - A call that fails on a reused connection because the agent closed it (restarted, idle
//   timeout, hot restart) is sent once more on a fresh connection, within the same deadline,
//   only when its method is idempotent (GET, PUT, DELETE, HEAD: every agent call that sets
//   desired state or reads). A POST (kill an instance) is never sent twice.
// - No thread of its own: a call runs on its caller's thread, each connection has its own
//   io_context.
//
// Thread safety: request() may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http_client.h"
#include "common/http_types.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ferry {

class TlsContext;

struct AgentConnectionOptions {
  int timeout_ms = 3000;  // the whole of one call
  size_t max_response_bytes = 16u << 20;
  size_t max_connections = 4;  // open at once to this agent (checked out + idle)
  // An idle connection older than this is closed rather than reused (agents close idle
  // connections after 60 s; closing first avoids sending into a closing socket).
  int max_idle_ms = 20'000;
};

class AgentConnections {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  AgentConnections(Endpoint endpoint, AgentConnectionOptions options);
  ~AgentConnections();
  AgentConnections(const AgentConnections&) = delete;
  AgentConnections& operator=(const AgentConnections&) = delete;

  // One request. `tls`: mutual TLS with that client-role context; nullptr: plain HTTP.
  // Transport failures are kUnavailable or kDeadlineExceeded naming the address; any HTTP
  // status is an answer.
  Result<HttpResponse> request(const std::shared_ptr<TlsContext>& tls, std::string_view method,
                               std::string_view target, const Headers& headers,
                               std::string_view body);

  struct Counts {
    uint64_t opened = 0;   // connections made (TCP connect + handshake)
    uint64_t reused = 0;   // calls sent on a connection kept from an earlier call
    uint64_t retried = 0;  // idempotent calls sent again after their reused connection failed
    uint64_t open = 0;     // open now
  };
  Counts counts() const;
  // Closes every idle connection (the next call connects afresh).
  void close_idle();
  const Endpoint& endpoint() const { return ep_; }

 private:
  struct Conn;
  using Deadline = std::chrono::steady_clock::time_point;
  // A usable connection: an idle one (`*reused` set) or, always when `fresh`, a new one.
  Result<std::unique_ptr<Conn>> acquire(const std::shared_ptr<TlsContext>& tls, Deadline deadline,
                                        bool fresh, bool* reused);
  Result<std::unique_ptr<Conn>> open(const std::shared_ptr<TlsContext>& tls, Deadline deadline);
  // Keeps `c` for the next call when `keep`, else closes it.
  void release(std::unique_ptr<Conn> c, bool keep);
  bool usable(Conn& c, const std::shared_ptr<TlsContext>& tls) const FERRY_REQUIRES(mu_);
  Result<HttpResponse> exchange(Conn& c, std::string_view method, std::string_view target,
                                const Headers& headers, std::string_view body, Deadline deadline,
                                bool* keep);

  const Endpoint ep_;
  const AgentConnectionOptions opts_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_ FERRY_GUARDED_BY(mu_);
  size_t open_ FERRY_GUARDED_BY(mu_) = 0;
  Counts counts_ FERRY_GUARDED_BY(mu_);
};

}  // namespace ferry
