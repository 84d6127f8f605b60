// The routing table in the form the io threads read it: an immutable Snapshot built by
// set_table (shared_ptr swap, so a new table is one pointer away), the per-backend state
// that outlives table versions (in-flight count, idle upstream connections), and the
// per-thread Picker that spreads requests by weight.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "router/release_counters.h"
#include "router/router.h"
#include "router/trust.h"

namespace ferry::routing {

using tcp = boost::asio::ip::tcp;
// The router's I/O objects name the io_context executor type directly rather than the
// polymorphic any_io_executor: every handler dispatch then skips a virtual call.
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<tcp, Executor>;
using SteadyTime = std::chrono::steady_clock::time_point;

// An idle keep-alive connection to a backend.
struct PooledConnection {
  Socket socket;
  SteadyTime idle_since;
};

// One backend (same id and address) across table versions.
struct BackendState {
  BackendState(RouteBackend spec, tcp::endpoint endpoint, size_t workers);

  const RouteBackend spec;
  const tcp::endpoint endpoint;
  std::atomic<int> in_flight{0};
  // Set when a table without this backend is installed: its connections are not pooled.
  std::atomic<bool> removed{false};

  // Idle connections per io thread; only that thread touches its pool (no lock), padded so
  // threads do not share a cache line.
  struct alignas(64) Pool {
    std::deque<PooledConnection> conns;
  };
  std::vector<Pool> pools;
};

struct ReleaseRoute {
  std::string name;
  int weight = 0;
  std::shared_ptr<ReleaseCounters> counters;
  std::vector<std::shared_ptr<BackendState>> backends;
};

// RouterSpec in the form a request reads it (ranges parsed once per table).
struct Policy {
  enum class Affinity { kNone, kCookie, kHeader };
  std::vector<Cidr> trusted_proxies;
  std::vector<Cidr> pin_from;
  bool pin_tokens = false;
  bool shield = true;
  Affinity affinity = Affinity::kNone;
  std::string affinity_header;  // kHeader: the field whose value picks the release
  int request_body_timeout_ms = 60'000;
  // Paths left out of the SLO's counter set (RouterSpec::slo_exclude_paths, when valid).
  std::vector<std::string> slo_exclude_paths;

  bool pinning() const { return pin_tokens || !pin_from.empty(); }
};
Policy make_policy(const RouterSpec& spec);

// One version of the table, never changed after it is built.
struct Snapshot {
  uint64_t version = 0;
  RouteTable table;
  std::vector<ReleaseRoute> releases;
  std::vector<int> weighted;  // releases with weight > 0 and at least one backend
  // Shared apart from the snapshot so an idle connection's parser can hold it without
  // keeping old backends alive.
  std::shared_ptr<const Policy> policy;
  int stable = -1;  // index of the stable release, or -1

  bool routable(int i) const {
    return i >= 0 && releases[i].weight > 0 && !releases[i].backends.empty();
  }

  // Index of the release named `name`, or -1.
  int find(std::string_view name) const;
};

// Smooth weighted round-robin over releases (the interleaving nginx uses: each pick adds
// every weight to its release's credit, takes the release with most credit and charges it
// the total), then plain round-robin over the chosen release's backends. One Picker per
// io thread, reset whenever its thread sees a new snapshot.
class Picker {
 public:
  void reset(const Snapshot& s);
  // A weighted release other than `exclude`, or -1 when none has a backend.
  int pick_release(const Snapshot& s, int exclude = -1);
  // The weighted release a hash of `key` falls on: the same key gets the same release while
  // the weights stay, and most keys keep theirs when weights move.
  static int pick_by_hash(const Snapshot& s, std::string_view key);
  // The next backend of release `index` other than `exclude`, or nullptr.
  BackendState* pick_backend(const Snapshot& s, int index, const BackendState* exclude = nullptr);

 private:
  std::vector<int64_t> credit_;
  std::vector<size_t> next_;
};

// Everything set_table has seen: backend states by id and counters by release. Not
// thread-safe; the Router guards it with its table mutex.
class Registry {
 public:
  explicit Registry(size_t workers) : workers_(workers) {}

  // Builds the snapshot for `table`. Backends whose host cannot be resolved are left out
  // (and named in `skipped`).
  std::shared_ptr<const Snapshot> build(RouteTable table, uint64_t version,
                                        std::vector<std::string>* skipped);
  int in_flight(const std::string& backend_id) const;
  std::vector<ReleaseStats> stats() const;
  // Adds a previous process's counters (ReleaseCounters::seed), by release name.
  void seed(const std::vector<ReleaseStats>& stats);
  // Forgets the counters of every release not in `keep`; returns how many were dropped.
  // A release named again by a later table starts from zero.
  size_t retain(const std::set<std::string>& keep);
  // Drops every pooled idle connection (after the io threads stopped).
  void clear_pools();

 private:
  size_t workers_;
  std::map<std::string, std::shared_ptr<BackendState>> backends_;
  std::map<std::string, std::shared_ptr<ReleaseCounters>> releases_;
};

}  // namespace ferry::routing
