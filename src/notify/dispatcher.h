// Dispatcher: the Notifier the server runs. notify() files the event with every sink
// that wants it (a bounded queue per sink) and returns; one worker thread delivers, each
// sink's events in order, retrying failures with exponential backoff. While one sink
// waits out its backoff the others keep going. Every attempt is reported through
// on_delivery so the server can store and count it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mask.h"
#include "common/thread_annotations.h"
#include "core/spec.h"
#include "notify/event.h"
#include "notify/http_post.h"
#include "notify/sink.h"

namespace ferry {

// One attempt to deliver one event to one sink (or an event dropped before any).
struct DeliveryRecord {
  std::string sink;       // the notification's name in ferry.yaml
  std::string sink_type;  // slack, pagerduty, webhook
  NotificationEvent event;
  std::string delivery_id;
  std::string action;     // pagerduty: trigger or resolve
  int attempt = 0;        // 1, 2, …; 0 when dropped before an attempt
  bool ok = false;
  bool final = false;     // no further attempt follows (delivered, given up or dropped)
  int http_status = 0;    // 0 when no HTTP answer came
  std::string error;      // why it failed; never holds a URL's path or a secret
  // "delivered", "retrying", "failed" or "dropped" — the `result` label of
  // ferry_notifications_total (count only records with final set).
  std::string_view result() const;
};

struct DispatcherOptions {
  int max_attempts = 5;
  Duration backoff_base{200};     // delay before attempt n+1 is base * 2^(n-1) …
  Duration backoff_max{30'000};   // … at most this (a Retry-After longer than it too)
  bool jitter = true;             // each delay drawn from [delay/2, delay]
  size_t queue_capacity = 1000;   // per sink; an event past it is dropped and reported
  Duration drain_timeout{5'000};  // stop() delivers what is queued for at most this long
  PostOptions http;
  std::string source = "ferry";   // PagerDuty payload.source (the server's host name)
  EnvLookup env;                  // default: the process environment
  std::shared_ptr<HttpPoster> poster;  // default: CurlPoster(http)
  Clock* clock = nullptr;         // webhook timestamps; default: the system clock
  // Gets every sink's secrets (URLs, keys) so no log line can show them.
  std::shared_ptr<Masker> masker;
  // Runs on the worker thread after every attempt (and on the caller's thread of
  // notify() for an event dropped on a full queue, and of stop() for the ones left).
  // Must be quick and must not call notify().
  std::function<void(const DeliveryRecord&)> on_delivery;
};

class Dispatcher final : public Notifier {
  struct Token {};  // only create() makes one

 public:
  Dispatcher(Token, DispatcherOptions options);
  // Builds every sink (an error names the notification whose URL, key or events are
  // wrong, or whose environment variable is not set) and starts the worker.
  static Result<std::unique_ptr<Dispatcher>> create(const std::vector<NotificationSpec>& specs,
                                                    DispatcherOptions options);
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Queues the event for each sink that wants it; never blocks on the network.
  // Events after stop() are dropped.
  void notify(const NotificationEvent& event) override;

  // Delivers what is queued (no backoff waits, no new retries) until the queues are
  // empty or drain_timeout passes; what is left is reported as failed. Joins the worker.
  void stop();

  // Blocks until no delivery is queued or in flight, or `timeout` passes; true when idle.
  bool wait_idle(Duration timeout);
  // Deliveries queued or in flight now.
  size_t pending() const;
  // Events dropped because a sink's queue was full (or after stop()).
  uint64_t dropped() const;
  size_t sinks() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Pending {
    NotificationEvent event;
    Prepared prepared;
    int attempt = 0;  // attempts made so far
    SteadyTime due{};
  };
  struct Lane {
    std::unique_ptr<Sink> sink;
    std::deque<Pending> queue;  // the front is the one being delivered or waited for
  };

  void run() FERRY_EXCLUDES(mu_);
  // Makes one attempt for the front of `lane`; mu_ is held on entry and on return but let
  // go around the POST and the report.
  void attempt(Lane& lane) FERRY_REQUIRES(mu_);
  Duration backoff(int attempts_made, int retry_after_s) FERRY_REQUIRES(mu_);
  void report(const DeliveryRecord& r) FERRY_EXCLUDES(mu_);
  DeliveryRecord record_for(const Lane& lane, const Pending& p) const;

  DispatcherOptions opts_;
  SystemClock system_clock_;

  mutable Mutex mu_;
  std::vector<Lane> sinks_ FERRY_GUARDED_BY(mu_);
  std::mt19937 rng_ FERRY_GUARDED_BY(mu_);
  std::condition_variable cv_;       // wakes the worker: new event, stop
  std::condition_variable idle_cv_;  // wakes wait_idle
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  bool in_flight_ FERRY_GUARDED_BY(mu_) = false;
  uint64_t dropped_ FERRY_GUARDED_BY(mu_) = 0;
  SteadyTime drain_deadline_ FERRY_GUARDED_BY(mu_){};
  std::thread worker_;
};

}  // namespace ferry
