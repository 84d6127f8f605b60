// Clock: every reading of time goes through this interface so that deployment windows,
// pauses and timeouts can be tested with a FakeClock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace ferry {

using SystemTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (audit entries, windows).
  virtual SystemTime now() const = 0;
  // Monotonic milliseconds, for measuring intervals; unrelated to wall time.
  virtual int64_t monotonic_ms() const = 0;
  // Blocks for `d` of this clock's time (a FakeClock returns when advanced past it).
  virtual void sleep_for(Duration d) = 0;
};

class SystemClock final : public Clock {
 public:
  SystemTime now() const override;
  int64_t monotonic_ms() const override;
  void sleep_for(Duration d) override;
};

// A clock that moves only when told; sleepers wake when advance() passes their deadline.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(SystemTime start = SystemTime{});
  SystemTime now() const override;
  int64_t monotonic_ms() const override;
  void sleep_for(Duration d) override;
  void advance(Duration d);
  void set(SystemTime t);
  // How many threads are in sleep_for now (tests wait for this before advancing).
  int sleepers() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  SystemTime now_;
  int64_t mono_ms_ = 0;
  int sleepers_ = 0;
};

// Milliseconds since the Unix epoch, the store's and the API's time unit.
int64_t to_unix_ms(SystemTime t);
SystemTime from_unix_ms(int64_t ms);
// RFC 3339 in UTC with milliseconds: 2026-11-25T09:30:00.123Z
std::string format_rfc3339(SystemTime t);

}  // namespace ferry
