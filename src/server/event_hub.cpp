#include "server/event_hub.h"

namespace ferry {

namespace {
constexpr size_t kMaxQueued = 1000;
}

std::shared_ptr<EventHub::Subscription> EventHub::subscribe() {
  auto s = std::make_shared<Subscription>();
  std::lock_guard lk(mu_);
  subs_.insert(s);
  return s;
}

void EventHub::unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard lk(mu_);
  subs_.erase(s);
}

void EventHub::publish(const Json& event) {
  std::lock_guard lk(mu_);
  for (const auto& s : subs_) {
    std::lock_guard sl(s->mu);
    if (s->queue.size() >= kMaxQueued) s->queue.pop_front();
    s->queue.push_back(event);
    s->cv.notify_all();
  }
}

void EventHub::close_all() {
  std::lock_guard lk(mu_);
  for (const auto& s : subs_) {
    std::lock_guard sl(s->mu);
    s->closed = true;
    s->cv.notify_all();
  }
}

std::optional<Json> EventHub::next(Subscription& s, int ms) {
  std::unique_lock lk(s.mu);
  s.cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return s.closed || !s.queue.empty(); });
  if (s.closed || s.queue.empty()) return std::nullopt;
  Json e = std::move(s.queue.front());
  s.queue.pop_front();
  return e;
}

}  // namespace ferry
