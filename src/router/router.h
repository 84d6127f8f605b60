// Router: the zero-downtime HTTP/1.1 reverse proxy an agent runs on an app's public
// port. Requests go to ready backends only, split across releases by weight with smooth
// weighted round-robin (or kept on one release by a signed affinity cookie or a header
// hash); a new table takes effect for the next request (weights change atomically). A
// header pins a request to one release, only for clients in the pinning allowlist or
// with a signed, expiring pin token; pinned requests are counted apart from the analysis.
// Idempotent requests that cannot connect, or that get 502/503 from one backend, are
// retried once on another; with the canary shield, one that a non-stable release fails
// is retried once on the stable release. Bodies stream in both directions (chunked, SSE)
// within a total body deadline, and websocket upgrades are tunnelled. Messages whose
// Connection header names a field the router frames or forwards by are refused.
// Per-release counters and latency histograms feed the engine's analysis. With `tls` the
// port speaks TLS (termination, SNI, reload of changed certificates without dropping a
// connection); with `access_log` every request is logged as a JSON line.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/agent_api.h"

namespace ferry {

class RouterIoPool;       // router/io_pool.h
class AcmeChallengeBook;  // router/tls_challenges.h
class FaultInjector;      // router/fault.h

// One instance the router may send requests to.
struct RouteBackend {
  std::string id;       // instance id, unique within the app
  std::string release;  // release it runs
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

// What the router routes: only ready backends are listed.
struct RouteTable {
  std::map<std::string, int> weights;  // release → weight; a release absent or 0 gets none
  std::vector<RouteBackend> backends;
  // Trust, shield, affinity and body deadline; they change with the table, per request.
  // Address ranges that do not parse are left out (ferry validate refuses them).
  RouterSpec policy;
  // The known-good release the shield retries on; empty: the one with the most weight.
  std::string stable;
};

struct RouterOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: pick a free port (see Router::port())
  // The io threads the router runs on: a pool shared with other routers (an agent's
  // routers share one), or, when null, `threads` threads of the router's own.
  std::shared_ptr<RouterIoPool> io_pool;
  int threads = 1;
  size_t max_header_bytes = 64 * 1024;  // larger request headers: 431
  size_t max_body_bytes = 64u << 20;    // larger declared request bodies: 413
  int connect_timeout_ms = 2'000;
  int response_timeout_ms = 60'000;  // upstream must start answering within this: 504
  int idle_timeout_ms = 60'000;      // idle keep-alive client connections are closed
  std::string pin_header = "x-ferry-release";
  int max_connections = 10'000;  // client connections beyond this are closed at once
  // Signed values (pin tokens, affinity cookies) name the app and use this key: `key`
  // itself, else the file `key_file` (made when missing, see load_router_key), else a
  // random key for this router's lifetime.
  std::string app;
  std::string key;
  std::string key_file;
  // A listening socket handed over by the previous agent process (agent/handoff.h). The
  // router owns it from construction: start() serves on it when it is a listening TCP
  // socket bound to host:port, else closes it and binds a fresh one. Either way the socket
  // has the same options (SO_REUSEADDR, close-on-exec, no SO_REUSEPORT), so a process that
  // finds no predecessor to hand over binds the port exactly as one that inherited it.
  int listen_fd = -1;
  // TLS on `port` (docs/router.md, "TLS"): certificates by SNI, client certificates, HSTS,
  // and a plain HTTP port beside it (tls.http_port, 0: none) that redirects to HTTPS or
  // proxies. No certificate: plain HTTP on `port`, as before.
  TlsSpec tls;
  int tls_handshake_timeout_ms = 10'000;  // a client must finish its handshake within this
  // TLS 1.3 session tickets sent after a full handshake (0-4; OpenSSL's default is 2, one is
  // what a client resumes with; 0: none, and no TLS 1.2 tickets: bench/router/tls.sh
  // sets it like the peers it compares with).
  int tls_session_tickets = 1;
  // How often the certificate files are checked; a changed set is loaded for new
  // connections (open ones keep theirs). A set that fails to load leaves the old one.
  int tls_reload_interval_ms = 5'000;
  // ACME HTTP-01 answers (tls.acme) served on the plain port (tls.http_port) at
  // /.well-known/acme-challenge/TOKEN before any redirect or proxying; null: none.
  std::shared_ptr<const AcmeChallengeBook> acme_challenges;
  // One JSON line per request (router/access_log.h); no path: off.
  AccessLogSpec access_log;
  size_t access_log_queue_lines = 16384;
  // Game-day faults (router/fault.h): consulted once per routed request; null: none. The
  // owner (the agent's app) keeps it across routers, so a new router keeps the experiment.
  std::shared_ptr<FaultInjector> faults;
};

class Router {
 public:
  explicit Router(RouterOptions options);
  ~Router();  // stops
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds (or adopts options.listen_fd) and starts serving; an error names the address
  // that could not be bound. On an adopted socket connections are accepted only once a
  // table is set (before or after start()), so clients queued in its backlog never meet
  // the empty initial table.
  Status start();
  // Stops accepting, closes every connection and waits until none of the router's work is
  // left on its io threads (a pool of its own is joined). Never call it from one of the
  // router's io threads.
  void stop();
  // stop(), and the port is let go for good in every process that holds the listening
  // socket (the agent's keeper keeps a copy across crashes, agent/keeper.h): shutdown() of
  // a listening socket ends its LISTEN state for all its descriptors, so the port can be
  // bound again at once and clients are refused rather than queued where no one accepts.
  // For an app that leaves the port, never for a hot restart (the next process serves on
  // the same socket).
  void release_port();
  uint16_t port() const;
  // The plain HTTP port beside a TLS port (tls.http_port; the bound one when that was 0),
  // or 0 when there is none or it is not bound yet.
  uint16_t http_port() const;
  // Certificate sets loaded by a reload since start, and the last reload's error (empty
  // when it succeeded). Thread-safe.
  uint64_t tls_reloads() const;
  // Reloads that failed (each changed set of files counted once; the old set serves on).
  uint64_t tls_reload_failures() const;
  std::string tls_error() const;
  // Times a client connection that had waited a second for its next request gave back its
  // buffers (Session::trim), since start. Thread-safe.
  uint64_t idle_trims() const;
  // HTTP/2 connections the router cut off since start, by reason (each connection counted
  // once): rapid_reset, streams reset before their answer beyond the budget
  // (CVE-2023-44487); flood, SETTINGS/PING/PRIORITY/empty DATA frames beyond the budget,
  // or more queued answers than the library allows; protocol_error, frames that break
  // HTTP/2 (GOAWAY with the library's code) or no HTTP/2 preface. Thread-safe.
  struct H2Abuse {
    uint64_t rapid_reset = 0;
    uint64_t flood = 0;
    uint64_t protocol_error = 0;
  };
  H2Abuse h2_abuse() const;
  // Access log lines written and dropped (queue full or a write error) since start.
  uint64_t access_log_written() const;
  uint64_t access_log_dropped() const;
  // Whether start() served on the handed-over socket rather than binding a fresh one.
  bool adopted_listener() const;

  // Hot restart (agent/handoff.h). Thread-safe; call after start() and before stop().
  // Stops taking connections from the listening socket (they wait in its backlog) or
  // takes them again; connections already open are served either way.
  void pause_accepting();
  void resume_accepting();
  // A duplicate (close-on-exec) of the listening socket for the next process; the caller
  // owns it. -1 when not listening.
  int duplicate_listener() const;
  // From now on every response closes its connection ("Connection: close"), so clients
  // reconnect, to the next process. Idle connections stay until stop().
  void drain();
  // Client connections open now.
  int connections() const;
  // Counters carried over from the previous process's router: added to this router's
  // counters of the same release, so analysis windows see no reset.
  void seed_stats(const std::vector<ReleaseStats>& stats);

  // Replaces the routing table; requests that start after this returns use it.
  void set_table(RouteTable table);
  RouteTable table() const;

  // Requests in flight to a backend (draining waits for 0 after removing it).
  int in_flight(const std::string& backend_id) const;

  // Cumulative counters per release since start (releases routed to and not dropped).
  std::vector<ReleaseStats> stats() const;
  // Drops the counters of every release not in `keep` (the agent keeps a release's
  // counters only while it has instances or weight, and for the analysis window after),
  // so memory and stats() stay bounded however many releases an app ever had. Requests
  // still in flight to a dropped release finish uncounted. Returns how many were dropped.
  size_t retain_stats(const std::set<std::string>& keep);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
