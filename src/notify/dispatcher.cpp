#include "notify/dispatcher.h"

#include <algorithm>

namespace ferry {

std::string_view DeliveryRecord::result() const {
  if (ok) return "delivered";
  if (attempt == 0) return "dropped";
  return final ? "failed" : "retrying";
}

namespace {

// Transport failures, server errors, rate limits and request timeouts may pass; any
// other answer (401 bad key, 404 gone webhook, 400 bad payload) will not by repeating.
bool retryable(int http_status) {
  return http_status == 0 || http_status >= 500 || http_status == 429 || http_status == 408;
}

// The first bytes of an error answer, printable ASCII only, to say what the peer said.
std::string snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

}  // namespace

Dispatcher::Dispatcher(Token, DispatcherOptions options)
    : opts_(std::move(options)), rng_(std::random_device{}()) {}

Result<std::unique_ptr<Dispatcher>> Dispatcher::create(const std::vector<NotificationSpec>& specs,
                                                       DispatcherOptions options) {
  if (options.max_attempts < 1) options.max_attempts = 1;
  if (options.queue_capacity < 1) options.queue_capacity = 1;
  if (!options.env) options.env = process_env();
  if (!options.poster) options.poster = std::make_shared<CurlPoster>(options.http);
  if (!options.masker) options.masker = std::make_shared<Masker>();
  auto d = std::make_unique<Dispatcher>(Token{}, std::move(options));
  for (const auto& spec : specs) {
    auto sink = Sink::create(spec, d->opts_.env, d->opts_.source);
    if (!sink.ok()) return sink.status();
    for (const auto& secret : (*sink)->secrets()) d->opts_.masker->add(secret);
    MutexLock lock(d->mu_);
    d->sinks_.push_back(Lane{std::move(*sink), {}});
  }
  d->worker_ = std::thread([raw = d.get()] { raw->run(); });
  return d;
}

Dispatcher::~Dispatcher() {
  stop();
}

void Dispatcher::notify(const NotificationEvent& event) {
  std::vector<DeliveryRecord> drops;
  {
    MutexLock lock(mu_);
    if (stopping_) {
      ++dropped_;
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& lane : sinks_) {
      auto prepared = lane.sink->prepare(event);
      if (!prepared) continue;
      Pending p{event, std::move(*prepared), 0, now};
      if (lane.queue.size() >= opts_.queue_capacity) {
        ++dropped_;
        DeliveryRecord r = record_for(lane, p);
        r.final = true;
        r.error = "dropped: the queue of " + std::to_string(opts_.queue_capacity) +
                  " undelivered notifications is full";
        drops.push_back(std::move(r));
        continue;
      }
      lane.queue.push_back(std::move(p));
    }
  }
  cv_.notify_one();
  for (const auto& r : drops) report(r);
}

void Dispatcher::stop() {
  {
    MutexLock lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + opts_.drain_timeout;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool Dispatcher::wait_idle(Duration timeout) {
  MutexLock lock(mu_);
  return lock.wait_for(idle_cv_, timeout, [&]() FERRY_REQUIRES(mu_) {
    for (const auto& lane : sinks_)
      if (!lane.queue.empty()) return false;
    return !in_flight_;
  });
}

size_t Dispatcher::pending() const {
  MutexLock lock(mu_);
  size_t n = 0;
  for (const auto& lane : sinks_) n += lane.queue.size();
  return n;
}

size_t Dispatcher::sinks() const {
  MutexLock lock(mu_);
  return sinks_.size();
}

uint64_t Dispatcher::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

void Dispatcher::run() {
  MutexLock lock(mu_);
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (stopping_ && now >= drain_deadline_) break;
    // The sink whose front delivery is due first; while stopping nobody waits.
    Lane* next = nullptr;
    SteadyTime due = SteadyTime::max();
    for (auto& lane : sinks_) {
      if (lane.queue.empty()) continue;
      const SteadyTime d = stopping_ ? now : lane.queue.front().due;
      if (d < due) {
        due = d;
        next = &lane;
      }
    }
    if (!next) {
      if (stopping_) break;
      idle_cv_.notify_all();
      lock.wait(cv_);
      continue;
    }
    if (due > now) {
      lock.wait_until(cv_, due);
      continue;
    }
    attempt(*next);
  }
  // What the drain could not deliver is reported, so counts of sent + failed add up.
  std::vector<DeliveryRecord> left;
  for (auto& lane : sinks_) {
    for (const auto& p : lane.queue) {
      DeliveryRecord r = record_for(lane, p);
      r.attempt = p.attempt;
      r.final = true;
      r.error = "not delivered: ferry stopped (drain timeout)";
      left.push_back(std::move(r));
    }
    lane.queue.clear();
  }
  idle_cv_.notify_all();
  lock.unlock();
  for (const auto& r : left) report(r);
}

void Dispatcher::attempt(Lane& lane) {
  Pending& front = lane.queue.front();
  const int n = ++front.attempt;
  Clock* clock = opts_.clock ? opts_.clock : &system_clock_;
  const OutboundRequest req = lane.sink->request(front.prepared, front.event, clock->now());
  DeliveryRecord rec = record_for(lane, front);
  rec.attempt = n;
  in_flight_ = true;

  mu_.unlock();
  auto res = opts_.poster->post(req);
  mu_.lock();

  int retry_after = -1;
  if (!res.ok()) {
    rec.error = opts_.masker->mask(res.status().message());
  } else {
    rec.http_status = res->status;
    retry_after = res->retry_after_s;
    rec.ok = res->status >= 200 && res->status < 300;
    if (!rec.ok) {
      rec.error = "HTTP " + std::to_string(res->status);
      const std::string said = snippet(res->body);
      if (!said.empty()) rec.error += ": " + opts_.masker->mask(said);
    }
  }
  const bool again = !rec.ok && retryable(rec.http_status) && n < opts_.max_attempts && !stopping_;
  rec.final = !again;
  // notify() may have appended while the lock was free; the front is still ours.
  if (again) {
    lane.queue.front().due = std::chrono::steady_clock::now() + backoff(n, retry_after);
  } else {
    lane.queue.pop_front();
  }

  // Still "in flight" until reported, so wait_idle() returns only after on_delivery.
  mu_.unlock();
  report(rec);
  mu_.lock();
  in_flight_ = false;
}

Duration Dispatcher::backoff(int attempts_made, int retry_after_s) {
  const int64_t base = std::max<int64_t>(0, opts_.backoff_base.count());
  const int64_t cap = std::max<int64_t>(base, opts_.backoff_max.count());
  int64_t d = base;
  for (int i = 1; i < attempts_made && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  if (opts_.jitter && d > 1) d = std::uniform_int_distribution<int64_t>(d / 2, d)(rng_);
  if (retry_after_s >= 0) d = std::max(d, std::min<int64_t>(int64_t{retry_after_s} * 1000, cap));
  return Duration(d);
}

void Dispatcher::report(const DeliveryRecord& r) {
  if (opts_.on_delivery) opts_.on_delivery(r);
}

DeliveryRecord Dispatcher::record_for(const Lane& lane, const Pending& p) const {
  DeliveryRecord r;
  r.sink = lane.sink->name();
  r.sink_type = std::string(lane.sink->type_name());
  r.event = p.event;
  r.delivery_id = p.prepared.delivery_id;
  r.action = p.prepared.action;
  return r;
}

}  // namespace ferry
