// The router's access log: one JSON line per request (docs/router.md, "Access log"). The
// io threads only format a line and queue it; a writer thread of the log appends the
// lines to the file and rotates it by size. When the queue is full (the disk is slower
// than the traffic) lines are dropped and counted, so a slow disk never stalls a request.
//
// Thread safety: record() and the counters may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "core/spec.h"

namespace ferry::routing {

// What the log says about one request.
struct AccessRecord {
  int64_t time_ms = 0;  // unix ms when the request head was read
  std::string_view client;
  std::string_view method;
  std::string_view path;  // the request target as sent
  int status = 0;         // 0: no answer (the connection closed)
  uint64_t bytes = 0;     // bytes sent to the client for this response, head included
  double duration_ms = 0;
  std::string_view release;
  std::string_view instance;
  std::string_view request_id;
  bool retried = false;   // sent again to another backend
  bool shielded = false;  // answered by the stable release for a failing canary
  bool tls = false;
  bool http2 = false;  // an HTTP/2 stream (its bytes: the HTTP/1.1 form of the response)
};

// The JSON line for `r` (with its final newline). Every string is escaped; bytes that are
// not UTF-8 become U+FFFD, so a hostile path cannot break the line or the JSON.
std::string access_log_line(const AccessRecord& r);

class AccessLog {
 public:
  // Opens (creates, 0640) `spec.path` for appending and starts the writer. An error names
  // the path. `queue_lines`: lines waiting at most.
  static Result<std::unique_ptr<AccessLog>> open(const AccessLogSpec& spec,
                                                 size_t queue_lines = 16384);
  // Writes what is queued, then stops the writer.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Queues one line; never waits for the disk. A full queue drops it (dropped() counts).
  void record(std::string line);
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t rotations() const { return rotations_.load(std::memory_order_relaxed); }

 private:
  AccessLog(AccessLogSpec spec, size_t queue_lines, int fd, int64_t size);
  void run();
  void rotate();  // writer thread only

  const AccessLogSpec spec_;
  const size_t queue_lines_;
  int fd_;        // writer thread only (after construction)
  int64_t size_;  // writer thread only
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_ FERRY_GUARDED_BY(mu_);
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> rotations_{0};
  std::thread writer_;
};

}  // namespace ferry::routing
