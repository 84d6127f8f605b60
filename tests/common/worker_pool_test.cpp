// WorkerPool (common/worker_pool.h): tasks of a batch run at once on threads that are reused
// across batches, never more than the bound, and a batch completes even when every worker
// is busy or a task fans out again.
#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace ferry {
namespace {

TEST(WorkerPool, TasksOfABatchRunAtOnceOnThreadsReusedAcrossBatches) {
  WorkerPool pool(16, 60'000);
  for (int round = 0; round < 20; ++round) {
    // Every task waits until all 8 have started: they can only finish if they run at once.
    std::mutex mu;
    std::condition_variable cv;
    int started = 0;
    std::atomic<int> met{0};
    pool.run_all(8, [&](size_t) {
      std::unique_lock lk(mu);
      ++started;
      cv.notify_all();
      if (cv.wait_for(lk, std::chrono::seconds(60), [&] { return started == 8; })) ++met;
    });
    ASSERT_EQ(met.load(), 8) << "round " << round;
  }
  // 7 workers (the caller runs the first task) made once, not 7 per round.
  EXPECT_LE(pool.threads_started(), 7u * 2);
  EXPECT_LE(pool.workers(), 16u);
}

TEST(WorkerPool, BeyondTheBoundTheBatchStillCompletesAndNestedBatchesDoNotDeadlock) {
  WorkerPool pool(2, 60'000);
  std::atomic<int> done{0};
  pool.run_all(10, [&](size_t) { pool.run_all(3, [&](size_t) { ++done; }); });
  EXPECT_EQ(done.load(), 30);
  EXPECT_LE(pool.threads_started(), 2u);
}

TEST(WorkerPool, IdleWorkersEnd) {
  WorkerPool pool(4, 20);
  pool.run_all(4, [](size_t) {});
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (pool.workers() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(pool.workers(), 0u);
  std::atomic<int> n{0};
  pool.run_all(4, [&](size_t) { ++n; });  // new workers after the old ones ended
  EXPECT_EQ(n.load(), 4);
}

}  // namespace
}  // namespace ferry
