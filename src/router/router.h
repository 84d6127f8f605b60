// Router: the zero-downtime HTTP/1.1 reverse proxy an agent runs on an app's public
// port. Requests go to ready backends only, split across releases by weight with smooth
// weighted round-robin; a new table takes effect for the next request (weights change
// atomically). A header pins a request to one release. Idempotent requests that cannot
// connect, or that get 502/503 from one backend, are retried once on another. Bodies
// stream in both directions (chunked, SSE) and websocket upgrades are tunnelled.
// Per-release counters and latency histograms feed the engine's analysis.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/agent_api.h"

namespace ferry {

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
};

struct RouterOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                      // 0: pick a free port (see Router::port())
  int threads = 1;                        // io threads
  size_t max_header_bytes = 64 * 1024;    // larger request headers: 431
  size_t max_body_bytes = 64u << 20;      // larger declared request bodies: 413
  int connect_timeout_ms = 2'000;
  int response_timeout_ms = 60'000;       // upstream must start answering within this: 504
  int idle_timeout_ms = 60'000;           // idle keep-alive client connections are closed
  std::string pin_header = "x-ferry-release";
  int max_connections = 10'000;           // client connections beyond this are closed at once
};

class Router {
 public:
  explicit Router(RouterOptions options);
  ~Router();  // stops
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds and starts serving; an error names the address that could not be bound.
  Status start();
  // Stops accepting, closes connections, joins threads.
  void stop();
  uint16_t port() const;

  // Replaces the routing table; requests that start after this returns use it.
  void set_table(RouteTable table);
  RouteTable table() const;

  // Requests in flight to a backend (draining waits for 0 after removing it).
  int in_flight(const std::string& backend_id) const;

  // Cumulative counters per release since start (releases ever routed to).
  std::vector<ReleaseStats> stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
