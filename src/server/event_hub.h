// EventHub: fan-out of deployment events to live streams (dashboard, `--watch`).
// Publishers never block on a slow reader: each subscriber has a bounded queue and
// misses what overflows it (it can re-read from the store by sequence number).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>

#include "common/json.h"

namespace ferry {

class EventHub {
 public:
  struct Subscription {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Json> queue;
    bool closed = false;
  };

  std::shared_ptr<Subscription> subscribe();
  void unsubscribe(const std::shared_ptr<Subscription>& s);
  void publish(const Json& event);
  // Wakes every subscriber and makes their waits return (server shutdown).
  void close_all();
  // Waits up to `ms` for the next event; nullopt on timeout or when closed.
  static std::optional<Json> next(Subscription& s, int ms);

 private:
  std::mutex mu_;
  std::set<std::shared_ptr<Subscription>> subs_;
};

}  // namespace ferry
