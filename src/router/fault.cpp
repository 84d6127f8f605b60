#include "router/fault.h"

#include <chrono>
#include <cmath>

namespace ferry {

namespace {

// splitmix64: a well-mixed 64-bit value from a counter, so concurrent requests draw
// independent-looking numbers without sharing a generator's state.
uint64_t fault_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The draws below `share` of the 64-bit range.
uint64_t share_cut(double share) {
  if (share <= 0) return 0;
  if (share >= 1) return UINT64_MAX;
  return static_cast<uint64_t>(std::ldexp(share, 64));
}

}  // namespace

FaultInjector::FaultInjector(std::function<int64_t()> now_ms, std::function<int64_t()> unix_now_ms,
                             uint64_t seed)
    : now_ms_(std::move(now_ms)), unix_now_ms_(std::move(unix_now_ms)), seed_(seed) {}

int64_t FaultInjector::mono_now() const {
  if (now_ms_) return now_ms_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t FaultInjector::unix_now() const {
  if (unix_now_ms_) return unix_now_ms_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool FaultInjector::running(const Active& a) const {
  return !a.cleared.load(std::memory_order_relaxed) && mono_now() < a.ends_mono_ms;
}

Status FaultInjector::set(FaultSetting setting) {
  if (Status s = setting.validate(); !s.ok()) return s;
  auto a = std::make_shared<Active>();
  a->ends_mono_ms = mono_now() + setting.duration_ms;
  setting.expires_at_ms = unix_now() + setting.duration_ms;
  a->latency_cut = share_cut(setting.latency_share);
  a->error_cut = share_cut(setting.error_share);
  a->setting = std::move(setting);
  MutexLock lk(mu_);
  current_ = std::move(a);
  armed_.store(true, std::memory_order_release);
  return Status::Ok();
}

bool FaultInjector::clear(const std::string& experiment) {
  MutexLock lk(mu_);
  if (!current_ || (!experiment.empty() && current_->setting.experiment != experiment))
    return false;
  bool was = running(*current_);
  current_->cleared.store(true);
  armed_.store(false, std::memory_order_release);
  return was;
}

FaultInjector::Action FaultInjector::decide() {
  if (!armed_.load(std::memory_order_acquire)) return {};
  std::shared_ptr<Active> a;
  {
    MutexLock lk(mu_);
    a = current_;
  }
  if (!a || !running(*a)) {
    // Ended by itself: later requests skip the lock until the next set().
    MutexLock lk(mu_);
    if (current_ == a) armed_.store(false, std::memory_order_release);
    return {};
  }
  a->seen.fetch_add(1, std::memory_order_relaxed);
  const uint64_t n = draws_.fetch_add(2, std::memory_order_relaxed);
  Action act;
  if (a->error_cut > 0 && fault_mix(seed_ ^ n) < a->error_cut) {
    act.error_status = a->setting.error_status;
    a->errored.fetch_add(1, std::memory_order_relaxed);
  } else if (a->latency_cut > 0 && fault_mix(seed_ ^ (n + 1)) < a->latency_cut) {
    act.delay_ms = a->setting.latency_ms;
    a->delayed.fetch_add(1, std::memory_order_relaxed);
    a->delay_ms_total.fetch_add(static_cast<uint64_t>(act.delay_ms), std::memory_order_relaxed);
  }
  return act;
}

FaultReport FaultInjector::report() const {
  std::shared_ptr<Active> a;
  {
    MutexLock lk(mu_);
    a = current_;
  }
  FaultReport r;
  if (!a) return r;
  r.setting = a->setting;
  r.active = running(*a);
  r.counters.seen = a->seen.load();
  r.counters.delayed = a->delayed.load();
  r.counters.errored = a->errored.load();
  r.counters.delay_ms_total = a->delay_ms_total.load();
  return r;
}

}  // namespace ferry
