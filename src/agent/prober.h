// Prober: the readiness and liveness probes of one run of one instance, as timers on the
// agent's io_context (no thread of its own). HTTP probes keep their connection alive
// between probes; TCP probes close with a reset (no TIME_WAIT left per probe); command
// probes are child processes whose exit is polled by a timer.
//
// Results go to `report` on `strand`: the owner passes its own strand (app_manager.cpp the
// app's), so a result needs no hop to another thread. A probe with `steady_interval_ms` waits
// that long instead of `interval_ms` once `success_threshold` probes in a row succeeded, and
// returns to `interval_ms` on its first failure. stop() ends both loops; the prober frees
// itself once its last operation has finished. Thread safety: start() once, stop() from any
// thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/instance_supervisor.h"
#include "core/spec.h"

namespace ferry {

struct ProbeTarget {
  std::string host = "127.0.0.1";  // a numeric address
  uint16_t port = 0;
  std::map<std::string, std::string> env;  // for command probes
};

// The wait after a probe's result `ok` before the next one, given the successes in a row so
// far (`ok_streak`, updated; it counts up to success_threshold only): `interval_ms` (at least
// 10 ms), or `steady_interval_ms` (at most 1 h, never below interval) once success_threshold probes
// in a row passed. A failure returns to `interval_ms` at once, so failure_threshold failures
// are confirmed at the fast pace.
int probe_wait_ms(const ProbeSpec& spec, int& ok_streak, bool ok);

class Prober : public std::enable_shared_from_this<Prober> {
 public:
  using Report = std::function<void(ProbeRole role, bool ok, const std::string& message)>;

  // Probes start `readiness.initial_delay_ms` (liveness: also at least `startup_grace_ms`)
  // after `started_mono_ms` on `clock`'s monotonic scale.
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  static std::shared_ptr<Prober> create(Strand strand, const ChecksSpec& checks, ProbeTarget target,
                                        int64_t started_mono_ms, int64_t now_mono_ms,
                                        Report report);
  void start();
  void stop();

  struct Loop;

 private:
  Prober(Strand strand, const ChecksSpec& checks, ProbeTarget target, Report report);

  Strand strand_;
  ChecksSpec checks_;
  ProbeTarget target_;
  Report report_;
  std::shared_ptr<Loop> ready_, live_;
  int64_t ready_delay_ms_ = 0, live_delay_ms_ = 0;
};

}  // namespace ferry
