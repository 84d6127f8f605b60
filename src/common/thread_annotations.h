// Locks the compiler checks. clang's -Wthread-safety (on in every clang build, so in CI)
// turns "needs mu_ held" into a build error: members say which mutex guards them
// (FERRY_GUARDED_BY), functions which mutex they need (FERRY_REQUIRES) or must not hold
// (FERRY_EXCLUDES). libstdc++'s std::mutex carries no annotations, so annotated code uses
// ferry::Mutex and ferry::MutexLock below; with g++ the macros expand to nothing.
//
//   class Queue {
//     void push(int v) FERRY_EXCLUDES(mu_) { MutexLock l(mu_); items_.push_back(v); }
//     void drop_locked() FERRY_REQUIRES(mu_);
//     Mutex mu_;
//     std::vector<int> items_ FERRY_GUARDED_BY(mu_);
//   };
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define FERRY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FERRY_THREAD_ANNOTATION(x)
#endif

#define FERRY_CAPABILITY(x) FERRY_THREAD_ANNOTATION(capability(x))
#define FERRY_SCOPED_CAPABILITY FERRY_THREAD_ANNOTATION(scoped_lockable)
#define FERRY_GUARDED_BY(x) FERRY_THREAD_ANNOTATION(guarded_by(x))
#define FERRY_PT_GUARDED_BY(x) FERRY_THREAD_ANNOTATION(pt_guarded_by(x))
#define FERRY_REQUIRES(...) FERRY_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FERRY_EXCLUDES(...) FERRY_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define FERRY_ACQUIRE(...) FERRY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FERRY_RELEASE(...) FERRY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FERRY_NO_THREAD_SAFETY_ANALYSIS FERRY_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace ferry {

// std::mutex with the capability annotation. native() is for condition variables only.
class FERRY_CAPABILITY("mutex") Mutex {
 public:
  void lock() FERRY_ACQUIRE() { mu_.lock(); }
  void unlock() FERRY_RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope. wait()/wait_until() release it while blocked on `cv` and
// hold it again when they return, as std::condition_variable does with a unique_lock.
class FERRY_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) FERRY_ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() FERRY_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <class Pred>
  void wait(std::condition_variable& cv, Pred pred) {
    cv.wait(lock_, pred);
  }
  template <class TimePoint>
  std::cv_status wait_until(std::condition_variable& cv, const TimePoint& t) {
    return cv.wait_until(lock_, t);
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& d,
                Pred pred) {
    return cv.wait_for(lock_, d, pred);
  }
  // Lets go of the mutex for a call that must not run under it (network, disk) and takes
  // it again; clang follows both, so guarded members used in between are reported.
  void unlock() FERRY_RELEASE() { lock_.unlock(); }
  void lock() FERRY_ACQUIRE() { lock_.lock(); }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace ferry
