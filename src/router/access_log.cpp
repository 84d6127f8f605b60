#include "router/access_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/json.h"

namespace ferry::routing {

namespace {

std::string iso_time_ms(int64_t unix_ms) {
  time_t s = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

int open_log(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

// Writes all of `data`, retrying short writes; false on an error.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string access_log_line(const AccessRecord& r) {
  Json j{{"time", iso_time_ms(r.time_ms)},
         {"client", r.client},
         {"method", r.method},
         {"path", r.path},
         {"status", r.status},
         {"bytes", r.bytes},
         {"duration_ms", static_cast<double>(static_cast<int64_t>(r.duration_ms * 1000)) / 1000},
         {"release", r.release},
         {"instance", r.instance},
         {"request_id", r.request_id},
         {"retried", r.retried},
         {"shielded", r.shielded},
         {"tls", r.tls},
         {"http2", r.http2}};
  std::string line = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const AccessLogSpec& spec, size_t queue_lines) {
  if (spec.path.empty()) return invalid_argument("access_log: no path");
  int fd = open_log(spec.path);
  if (fd < 0)
    return unavailable("access_log: cannot open " + spec.path + ": " + std::strerror(errno));
  struct stat st {};
  int64_t size = fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
  return std::unique_ptr<AccessLog>(new AccessLog(spec, queue_lines, fd, size));
}

AccessLog::AccessLog(AccessLogSpec spec, size_t queue_lines, int fd, int64_t size)
    : spec_(std::move(spec)), queue_lines_(queue_lines), fd_(fd), size_(size) {
  writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  if (fd_ >= 0) ::close(fd_);
}

void AccessLog::record(std::string line) {
  {
    MutexLock lock(mu_);
    if (queue_.size() >= queue_lines_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(line));
  }
  cv_.notify_one();
}

void AccessLog::run() {
  std::vector<std::string> batch;
  std::string buf;
  for (;;) {
    {
      MutexLock lock(mu_);
      lock.wait(cv_, [&]() FERRY_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is written
      // Taken in one go: the io threads wait on the mutex for a swap, not for the disk.
      size_t n = std::min<size_t>(queue_.size(), 1024);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    buf.clear();
    for (auto& line : batch) buf += line;
    if (fd_ >= 0 && write_all(fd_, buf.data(), buf.size())) {
      written_.fetch_add(batch.size(), std::memory_order_relaxed);
      size_ += static_cast<int64_t>(buf.size());
    } else {
      dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
    }
    batch.clear();
    if (size_ >= spec_.max_bytes) rotate();
  }
}

void AccessLog::rotate() {
  // path.(keep-1) → path.keep, …, path → path.1; the oldest beyond `keep` is overwritten.
  for (int i = spec_.keep - 1; i >= 1; --i) {
    std::string from = spec_.path + "." + std::to_string(i);
    std::string to = spec_.path + "." + std::to_string(i + 1);
    ::rename(from.c_str(), to.c_str());
  }
  if (spec_.keep >= 1)
    ::rename(spec_.path.c_str(), (spec_.path + ".1").c_str());
  else
    ::unlink(spec_.path.c_str());
  int fd = open_log(spec_.path);
  if (fd < 0) return;  // keep writing to the renamed file rather than lose lines
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
  rotations_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace ferry::routing
