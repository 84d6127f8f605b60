#include "common/worker_pool.h"

#include <algorithm>

namespace ferry {

struct WorkerPool::Batch {
  const std::function<void(size_t)>* f;
  size_t left;  // tasks not finished (guarded by the pool's mutex)
  std::condition_variable done;
};

WorkerPool::WorkerPool(size_t max_workers, int idle_ms)
    : max_workers_(std::max<size_t>(1, max_workers)), idle_ms_(idle_ms) {}

WorkerPool::~WorkerPool() {
  std::list<Worker> all;
  {
    MutexLock l(mu_);
    stopping_ = true;
    all.swap(workers_);
  }
  cv_.notify_all();
  for (auto& w : all)
    if (w.thread.joinable()) w.thread.join();
}

WorkerPool& WorkerPool::shared() {
  static WorkerPool pool(256);
  return pool;
}

size_t WorkerPool::workers() const {
  MutexLock l(mu_);
  size_t n = 0;
  for (const auto& w : workers_) n += w.done ? 0 : 1;
  return n;
}

size_t WorkerPool::threads_started() const {
  MutexLock l(mu_);
  return started_;
}

void WorkerPool::reap() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();  // it has returned from work() already
    it = workers_.erase(it);
  }
}

void WorkerPool::run_task(const Task& t) {
  (*t.batch->f)(t.index);
}

void WorkerPool::run_all(size_t n, const std::function<void(size_t)>& f) {
  if (n == 0) return;
  if (n == 1) {
    f(0);
    return;
  }
  Batch batch{&f, n, {}};
  {
    MutexLock l(mu_);
    reap();
    for (size_t i = 1; i < n; ++i) queue_.push_back({&batch, i});
    size_t alive = 0;
    for (const auto& w : workers_) alive += w.done ? 0 : 1;
    // Enough workers for what waits, within the bound.
    size_t want = queue_.size() > idle_ ? queue_.size() - idle_ : 0;
    while (want > 0 && alive < max_workers_ && !stopping_) {
      workers_.emplace_back();
      Worker* self = &workers_.back();
      self->thread = std::thread([this, self] {
        work();
        MutexLock done(mu_);
        self->done = true;
      });
      ++started_;
      ++alive;
      --want;
    }
  }
  cv_.notify_all();
  f(0);
  MutexLock l(mu_);
  --batch.left;
  // Helps with its own tasks that no worker took yet, then waits for the rest.
  for (;;) {
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [&](const Task& t) { return t.batch == &batch; });
    if (it == queue_.end()) break;
    const Task t = *it;
    queue_.erase(it);
    l.unlock();
    run_task(t);
    l.lock();
    --batch.left;
  }
  while (batch.left > 0) l.wait(batch.done);
}

void WorkerPool::work() {
  MutexLock l(mu_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      ++idle_;
      const bool woke = l.wait_for(cv_, std::chrono::milliseconds(idle_ms_),
                                   [this]() FERRY_REQUIRES(mu_) { return !queue_.empty() || stopping_; });
      --idle_;
      if (!woke) return;  // idle too long
    }
    if (queue_.empty()) return;  // stopping
    const Task t = queue_.front();
    queue_.pop_front();
    l.unlock();
    run_task(t);
    l.lock();
    if (--t.batch->left == 0) t.batch->done.notify_all();
  }
}

}  // namespace ferry
