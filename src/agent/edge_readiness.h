// What a load balancer in front of several hosts reads from this agent besides its
// instances (deploy/edge/, docs/operations.md, "A load balancer in front of several
// hosts"): whether an operator took the host out (`ferry agents out NAME`) and whether the
// agent is stopping (its drain period: readiness answers 503 while the routers still
// serve, so the balancer stops sending here before anything closes).
//
// The out mark is kept in a file of the agent's data dir, so it survives an agent restart
// (a host taken out for maintenance stays out until `ferry agents in NAME`).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "common/status.h"

namespace ferry {

class EdgeReadiness {
 public:
  // `out_file`: where the out mark is kept ("" = not kept, tests); read now.
  explicit EdgeReadiness(std::string out_file = "");

  bool out() const { return out_.load(); }
  // Sets the mark and writes it to the file first: an error (the file cannot be written)
  // changes nothing.
  Status set_out(bool out);
  bool draining() const { return draining_.load(); }
  void start_draining() { draining_.store(true); }
  // Called on every readiness answer; `asked_within` tells whether a balancer asked
  // recently (the stop drains only then: nobody watching, nothing to wait for).
  void asked() { last_asked_ns_.store(now_ns()); }
  bool asked_within(std::chrono::milliseconds d) const;

 private:
  static int64_t now_ns();
  std::string file_;
  std::mutex mu_;  // serialises set_out (file and flag change together)
  std::atomic<bool> out_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> last_asked_ns_{0};
};

}  // namespace ferry
