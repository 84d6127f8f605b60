// WorkerPool: threads kept for blocking calls that must run at the same time (the server's
// calls to its agents, fanned out by engine/reconciler.h's fan_out), instead of a new thread
// per call. Workers start on demand, up to `max_workers`, and an idle one ends after
// `idle_ms`; beyond the bound, tasks wait for a worker while the caller of run_all runs its
// own waiting tasks itself, so a batch always completes (no deadlock when a task fans out
// again) and the thread count stays bounded.
//
// Thread safety: run_all may be called from any number of threads at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "common/thread_annotations.h"

namespace ferry {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_workers, int idle_ms = 30'000);
  ~WorkerPool();  // waits for running tasks, ends every worker
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The process's pool for agent calls: at most 256 workers.
  static WorkerPool& shared();

  // Runs f(0) .. f(n-1) at once (f(0) on the caller's thread) and returns when all ended.
  void run_all(size_t n, const std::function<void(size_t)>& f);

  size_t workers() const;          // threads alive now
  size_t threads_started() const;  // since the pool was made

 private:
  struct Batch;
  struct Task {
    Batch* batch;
    size_t index;
  };
  void work();
  static void run_task(const Task& t);
  void reap() FERRY_REQUIRES(mu_);

  const size_t max_workers_;
  const int idle_ms_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_ FERRY_GUARDED_BY(mu_);
  size_t idle_ FERRY_GUARDED_BY(mu_) = 0;
  size_t started_ FERRY_GUARDED_BY(mu_) = 0;
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  struct Worker {
    std::thread thread;
    bool done = false;
  };
  std::list<Worker> workers_ FERRY_GUARDED_BY(mu_);
};

}  // namespace ferry
