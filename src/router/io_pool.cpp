// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/io_pool.h"

#include <pthread.h>

#include <algorithm>

namespace ferry {

int RouterIoPool::default_threads() {
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 8);
}

RouterIoPool::RouterIoPool(int threads, const std::string& name) {
  const int n = threads <= 0 ? default_threads() : std::clamp(threads, 1, 64);
  for (int i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
  const std::string short_name = name.substr(0, 15);
  for (int i = 0; i < n; ++i) {
    boost::asio::io_context* ioc = contexts_[static_cast<size_t>(i)].get();
    threads_.emplace_back([ioc] { ioc->run(); });
    pthread_setname_np(threads_.back().native_handle(), short_name.c_str());
  }
}

RouterIoPool::~RouterIoPool() {
  guards_.clear();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) {
    if (t.get_id() == std::this_thread::get_id())
      t.detach();  // the last router let go of the pool on one of its own threads
    else
      t.join();
  }
}

}  // namespace ferry
