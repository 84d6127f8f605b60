// Session::Exchange: the state of one request while it is routed and relayed (shared by
// session.cpp and proxy.cpp, private to the router).
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/session.h"

namespace ferry::routing {

// State of one request while it is routed and relayed. `snap` is declared first so the
// backend and counters it owns outlive the guards below.
struct Session::Exchange {
  std::shared_ptr<const Snapshot> snap;
  int release = -1;
  BackendState* backend = nullptr;
  bool pinned = false;         // counted apart: never in the analysis counters
  bool affinity_kept = false;  // a valid affinity cookie chose the release
  std::string set_cookie;      // affinity value to give the client, empty when none
  size_t head_len = 0;         // raw request head at the front of cbuf_
  size_t staged = 0;           // raw request bytes (head + parsed body) at the front of cbuf_
  SteadyTime start;
  int status = 0;
  bool close_client = false;
  bool retried = false;       // sent again to another backend (the access log says so)
  bool shielded = false;      // answered by the stable release in a canary's place
  bool slo_excluded = false;  // left out of the SLO's counter set (an excluded path)
  int64_t start_unix_ms = 0;

  struct InFlight {
    BackendState* b = nullptr;
    void set(BackendState* nb) {
      if (b) b->in_flight.fetch_sub(1, std::memory_order_relaxed);
      b = nb;
      if (b) b->in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    ~InFlight() { set(nullptr); }
  } in_flight;
  struct Active {
    ReleaseCounters* c = nullptr;
    void set(ReleaseCounters* nc) {
      if (c) c->active.fetch_sub(1, std::memory_order_relaxed);
      c = nc;
      if (c) c->active.fetch_add(1, std::memory_order_relaxed);
    }
    ~Active() { set(nullptr); }
  } active;

  const ReleaseRoute& route() const { return snap->releases[release]; }
  void choose(int rel, BackendState* b) {
    release = rel;
    backend = b;
    in_flight.set(b);
    active.set(snap->releases[rel].counters.get());
  }
};

}  // namespace ferry::routing
