// FaultInjector: the router's side of a game day (`ferry chaos`, core/fault_spec.h). While a
// setting is active, each routed request is answered with a 5xx by the router (a share of
// them) or held for a fixed latency before it is proxied (another share); both are counted
// here, apart from the release counters the analysis reads, so an experiment reports what
// clients saw without feeding the canary analysis injected failures.
//
// The setting carries its own end: the injector stops by itself once its duration has
// passed on the clock it was given, whoever set it (a control plane that went away, a
// server that restarted). Nothing is persisted: a restarted agent starts without faults.
//
// Thread safety: every method may be called from any thread; decide() takes no lock (the
// router's io threads call it once per request).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/thread_annotations.h"
#include "core/fault_spec.h"

namespace ferry {

class FaultInjector {
 public:
  // What to do to one request.
  struct Action {
    int error_status = 0;  // > 0: answer this status at once
    int delay_ms = 0;      // > 0: wait this long, then proxy as usual
  };

  // `now_ms` is a monotonic clock in milliseconds (steady_clock when null); `unix_now_ms`
  // wall time for the expiry reported back (system_clock when null). `seed` makes the
  // choice of which requests are hit reproducible in tests.
  explicit FaultInjector(std::function<int64_t()> now_ms = nullptr,
                         std::function<int64_t()> unix_now_ms = nullptr, uint64_t seed = 0);

  // Replaces the setting (a validated one, see FaultSetting::validate) and starts its
  // counters from zero; it ends `duration_ms` from now. kInvalidArgument leaves the
  // current setting as it was.
  Status set(FaultSetting setting);
  // Ends the current setting now (its counters stay readable). Returns whether one was
  // active and, when `experiment` is not empty, named it (another's is left alone).
  bool clear(const std::string& experiment = {});

  // One request routed now. Fast path when nothing is active: one atomic load.
  Action decide();

  FaultReport report() const;

 private:
  struct Active {
    FaultSetting setting;
    int64_t ends_mono_ms = 0;
    uint64_t latency_cut = 0;  // a request is delayed when its draw < cut (of 2^64)
    uint64_t error_cut = 0;
    std::atomic<uint64_t> seen{0}, delayed{0}, errored{0}, delay_ms_total{0};
    std::atomic<bool> cleared{false};
  };

  int64_t mono_now() const;
  int64_t unix_now() const;
  bool running(const Active& a) const;

  std::function<int64_t()> now_ms_;
  std::function<int64_t()> unix_now_ms_;
  uint64_t seed_;
  std::atomic<uint64_t> draws_{0};
  // Whether a setting may be active: decide() takes the mutex only while it is.
  std::atomic<bool> armed_{false};
  mutable Mutex mu_;
  std::shared_ptr<Active> current_ FERRY_GUARDED_BY(mu_);  // null: none ever set
};

}  // namespace ferry
