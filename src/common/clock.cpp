#include "common/clock.h"

#include <ctime>
#include <string>
#include <thread>

#include <fmt/format.h>

namespace ferry {

SystemTime SystemClock::now() const { return std::chrono::system_clock::now(); }

int64_t SystemClock::monotonic_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SystemClock::sleep_for(Duration d) { std::this_thread::sleep_for(d); }

FakeClock::FakeClock(SystemTime start) : now_(start) {}

SystemTime FakeClock::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

int64_t FakeClock::monotonic_ms() const {
  std::lock_guard lock(mu_);
  return mono_ms_;
}

void FakeClock::sleep_for(Duration d) {
  std::unique_lock lock(mu_);
  const int64_t until = mono_ms_ + d.count();
  ++sleepers_;
  cv_.wait(lock, [&] { return mono_ms_ >= until; });
  --sleepers_;
}

void FakeClock::advance(Duration d) {
  {
    std::lock_guard lock(mu_);
    now_ += d;
    mono_ms_ += d.count();
  }
  cv_.notify_all();
}

int FakeClock::sleepers() const {
  std::lock_guard lock(mu_);
  return sleepers_;
}

void FakeClock::set(SystemTime t) {
  std::lock_guard lock(mu_);
  now_ = t;
}

int64_t to_unix_ms(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

SystemTime from_unix_ms(int64_t ms) { return SystemTime{std::chrono::milliseconds(ms)}; }

std::string format_rfc3339(SystemTime t) {
  const int64_t ms = to_unix_ms(t);
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

}  // namespace ferry
