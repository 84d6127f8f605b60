// Waiting on a condition instead of a fixed sleep: `cond` is polled every `step` until it
// holds or `timeout` passes. A slow machine (sanitizers, a loaded CI) then makes a test
// slower, never wrong, and a fast one does not sit out a sleep sized for the slow one.
#pragma once

#include <chrono>
#include <thread>

namespace ferry::testing {

template <class Cond>
bool wait_until(Cond&& cond, std::chrono::milliseconds timeout = std::chrono::seconds(15),
                std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace ferry::testing
