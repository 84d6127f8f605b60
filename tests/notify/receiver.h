// A loopback HTTP receiver for notification tests: ferry's own HttpServer on
// 127.0.0.1:0 that records every request and answers with scripted statuses.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http_server.h"
#include "notify/dispatcher.h"

namespace ferry::testing {

class Receiver {
 public:
  Receiver() : server_(HttpServerOptions{}) {
    server_.fallback([this](HttpRequest& req) {
      int status = 200;
      std::string body = "ok";
      int delay_ms = 0;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req);
        if (!script_.empty()) {
          status = script_.front();
          script_.pop_front();
        }
        if (status >= 300) body = "upstream says no";
        if (!big_body_.empty()) body = big_body_;
        delay_ms = delay_ms_;
      }
      cv_.notify_all();
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      HttpResponse r = HttpResponse::text(body, "text/plain", status);
      return r;
    });
    Status st = server_.start();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  ~Receiver() { server_.stop(); }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_.port()) + path;
  }
  // The next answers' statuses, in order; 200 once they run out.
  void script(std::vector<int> statuses) {
    std::lock_guard lock(mu_);
    script_.assign(statuses.begin(), statuses.end());
  }
  void always(int status, int count = 100) { script(std::vector<int>(count, status)); }
  void delay(int ms) {
    std::lock_guard lock(mu_);
    delay_ms_ = ms;
  }
  void big_body(size_t n) {
    std::lock_guard lock(mu_);
    big_body_.assign(n, 'z');
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  HttpServer server_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<HttpRequest> requests_;
  std::deque<int> script_;
  std::string big_body_;
  int delay_ms_ = 0;
};

// Collects DeliveryRecords from on_delivery and waits for them (bounded).
class Deliveries {
 public:
  std::function<void(const DeliveryRecord&)> callback() {
    return [this](const DeliveryRecord& r) {
      std::lock_guard lock(mu_);
      records_.push_back(r);
      cv_.notify_all();
    };
  }
  // Waits until `n` final records came, at most 20 s; returns every record so far.
  std::vector<DeliveryRecord> wait_final(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return finals() >= n; });
    return records_;
  }
  std::vector<DeliveryRecord> all() {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  size_t finals() const {
    size_t n = 0;
    for (const auto& r : records_) n += r.final ? 1 : 0;
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<DeliveryRecord> records_;
};

}  // namespace ferry::testing
