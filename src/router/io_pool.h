// RouterIoPool: a fixed set of io threads, each running its own single-threaded
// io_context, that any number of routers share (an agent runs one router per app on one
// pool, so its threads grow with cores, not with apps). A router gives each of its io
// threads' worth of state (picker, table view, upstream pools) to one pool context, so the
// hot path still shares nothing between threads.
//
// Thread safety: size(), context() and next_home() may be called from any thread. The
// pool must outlive every router that uses it (routers hold a shared_ptr to it), and a
// router must not be stopped from one of the pool's own threads.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ferry {

class RouterIoPool {
 public:
  // Starts `threads` io threads (clamped to 1..64; 0 or less: default_threads()), named
  // `name` for ps/top (at most 15 characters are kept).
  explicit RouterIoPool(int threads, const std::string& name = "ferry-router");
  // Stops and joins the threads. Every router using the pool must be stopped before.
  ~RouterIoPool();
  RouterIoPool(const RouterIoPool&) = delete;
  RouterIoPool& operator=(const RouterIoPool&) = delete;

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& context(size_t i) { return *contexts_[i]; }
  // The context a new router's accept loop should run on: round-robin, so the accepting
  // of many routers spreads over the threads.
  size_t next_home() { return next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size(); }

  // One thread per core, 1 to 8.
  static int default_threads();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace ferry
