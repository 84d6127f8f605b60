// One io thread's share of a router: the io_context it runs on (a RouterIoPool's, shared
// with other routers), its view of the routing table, its sessions and its own upstream
// connection pools, so the hot path shares nothing with other threads except an atomic
// table version and the per-release counters.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "common/thread_annotations.h"
#include "router/access_log.h"
#include "router/block_pool.h"
#include "router/http_messages.h"
#include "router/io_buffer.h"
#include "router/route_table.h"
#include "router/router.h"

namespace ferry::routing {

// The current table: set_table stores the pointer and bumps the version under the mutex;
// io threads check the version (one atomic load per request) and copy the pointer only
// when it changed.
struct TableSource {
  std::atomic<uint64_t> version{0};
  Mutex mu;
  std::shared_ptr<const Snapshot> current FERRY_GUARDED_BY(mu);
};

class Session;
class TlsContexts;

// Which listening socket a connection came from, and how it is served.
struct Listener {
  // TLS on the app's port: the certificate set current when the connection was accepted.
  std::shared_ptr<TlsContexts> tls;
  // The plain port of a TLS app with `redirect`: every request gets a 308 to https.
  bool redirect = false;
};

struct Worker {
  Worker(size_t index_, boost::asio::io_context& ioc_, const RouterOptions& opts_,
         TableSource& tables_)
      : ioc(ioc_), index(index_), opts(opts_), tables(tables_) {
    if (opts.tls.enabled() && opts.tls.hsts_max_age_s > 0) {
      hsts = "Strict-Transport-Security: max-age=" + std::to_string(opts.tls.hsts_max_age_s);
      if (opts.tls.hsts_include_subdomains) hsts += "; includeSubDomains";
      hsts += "\r\n";
    }
  }

  // The table for a request starting now.
  const std::shared_ptr<const Snapshot>& table() {
    uint64_t v = tables.version.load(std::memory_order_acquire);
    if (!snap || snap->version != v) {
      MutexLock lock(tables.mu);
      snap = tables.current;
      picker.reset(*snap);
    }
    return snap;
  }

  // Open client connections of this thread (sessions count themselves). Declared before
  // the io_context so that sessions destroyed with it can still count down.
  std::atomic<int> connections{0};
  // Sessions of HTTP/2 streams (not client connections, but router work all the same).
  std::atomic<int> h2_streams{0};
  // HTTP/2 connections cut off for abuse (Router::h2_abuse), by reason; each connection
  // is counted once, for the first reason met.
  std::atomic<uint64_t> h2_rapid_reset{0};
  std::atomic<uint64_t> h2_flood{0};
  std::atomic<uint64_t> h2_protocol_error{0};
  // Idle client connections that gave back their buffers (Router::idle_trims).
  std::atomic<uint64_t> idle_trims{0};
  // Set by Router::drain(): every response from now on closes its client connection.
  std::atomic<bool> draining{false};
  // The pool's context this worker runs on; it outlives the worker (Router::stop waits
  // until no session, accept loop or posted handler of the router is left on it).
  boost::asio::io_context& ioc;
  const size_t index;
  const RouterOptions& opts;
  TableSource& tables;
  RequestIdGenerator ids;
  Picker picker;
  std::shared_ptr<const Snapshot> snap;
  // Sessions open on this worker, and whether the router is stopping (no new session, no
  // new upstream connection). Touched on the io thread only.
  std::unordered_set<Session*> sessions;
  bool stopping = false;
  // One timer for the deadlines of all those sessions (Session::set_deadline), instead of
  // a timer and a watchdog coroutine per session: it fires at the earliest deadline (plus
  // a little slack, so deadlines close together share a wake-up), and a session setting
  // a later deadline than that costs no timer operation at all. Io thread only, except
  // deadline_waits, which Router::stop waits to reach 0.
  std::optional<boost::asio::steady_timer> deadline_timer;
  SteadyTime deadline_tick = SteadyTime::max();  // when it fires next; max: not armed
  std::atomic<int> deadline_waits{0};
  // Spare I/O buffers of the sessions' first size (io thread only): an HTTP/2 stream's
  // session takes two and gives them back when it ends, so a stream costs no large
  // allocation. At most 512 are kept (8 MiB), enough for 16 connections' 100 streams.
  BufferPool buffers{16 * 1024, 512};
  // Memory for the sessions themselves (routing::make_session), for the same reason.
  BlockPool session_blocks{512};
  // The app's TLS port as bound (the HTTPS redirect names it) and the HSTS field added to
  // responses over TLS (empty: none). Set before the first connection.
  uint16_t tls_port = 0;
  std::string hsts;
  // The router's access log, or null (off). It outlives every session.
  AccessLog* access_log = nullptr;
};

}  // namespace ferry::routing
