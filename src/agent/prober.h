// Prober: the readiness and liveness probes of one run of one instance, as timers on the
// agent's io_context (no thread of its own). HTTP probes keep their connection alive
// between probes; TCP probes close with a reset (no TIME_WAIT left per probe); command
// probes are child processes whose exit is polled by a timer.
//
// Results go to `report` on an io thread; the owner serialises them (app_manager.cpp posts
// them to the app's strand). stop() ends both loops; the prober frees itself once its
// last operation has finished. Thread safety: start() once, stop() from any thread.
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

class Prober : public std::enable_shared_from_this<Prober> {
 public:
  using Report = std::function<void(ProbeRole role, bool ok, const std::string& message)>;

  // Probes start `readiness.initial_delay_ms` (liveness: also at least `startup_grace_ms`)
  // after `started_mono_ms` on `clock`'s monotonic scale.
  static std::shared_ptr<Prober> create(boost::asio::io_context& io, const ChecksSpec& checks,
                                        ProbeTarget target, int64_t started_mono_ms,
                                        int64_t now_mono_ms, Report report);
  void start();
  void stop();

  struct Loop;

 private:
  Prober(boost::asio::io_context& io, const ChecksSpec& checks, ProbeTarget target, Report report);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  ChecksSpec checks_;
  ProbeTarget target_;
  Report report_;
  std::shared_ptr<Loop> ready_, live_;
  int64_t ready_delay_ms_ = 0, live_delay_ms_ = 0;
};

}  // namespace ferry
