#include "scan/scanner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "scan/scan_setup.h"

namespace ferry::scan {
namespace {

namespace fs = std::filesystem;
constexpr size_t kBinaryProbe = 8192;
constexpr size_t kMaxFiles = 10'000'000;

struct FileEntry {
  std::string abs;
  std::string rel;
};

enum class ReadResult { kOk, kUnreadable, kTooLarge };

// Reads the whole file into `buf` (reused across files by one worker). The size comes from
// fstat on the open file: one path lookup per file instead of a stat and an open.
// A growable byte buffer that, unlike std::string::resize, does not zero what it adds.
class ReadBuffer {
 public:
  char* reserve(size_t n) {
    if (n > cap_) {
      cap_ = std::max(n, cap_ * 2);
      data_ = std::make_unique_for_overwrite<char[]>(cap_);
    }
    return data_.get();
  }
  std::string_view view(size_t n) const { return {data_.get(), n}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_ = 0;
};

ReadResult read_file(const std::string& path, uint64_t max_size, ReadBuffer& buf,
                     std::string_view& out) {
  // O_NOFOLLOW: a file replaced by a link after the walk saw it is not followed out of the
  // tree; O_NONBLOCK: a FIFO put in its place does not hang the open (it is then refused
  // by the S_ISREG check below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return ReadResult::kUnreadable;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return ReadResult::kUnreadable;
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return ReadResult::kTooLarge;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  char* p = buf.reserve(size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out = buf.view(got);  // the file may have shrunk since fstat
  return ReadResult::kOk;
}

bool looks_binary(std::string_view data) {
  return std::memchr(data.data(), '\0', std::min(data.size(), kBinaryProbe)) != nullptr;
}

// Files found by the walker, handed to the workers in batches while the walk goes on.
class FileQueue {
 public:
  void push(std::vector<FileEntry>& batch) {
    if (batch.empty()) return;
    {
      std::lock_guard lk(mu_);
      for (FileEntry& f : batch) q_.push_back(std::move(f));
    }
    batch.clear();
    cv_.notify_all();
  }
  void close() {
    {
      std::lock_guard lk(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // False when the walk is over and every file was handed out.
  bool pop(FileEntry& out) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    out = std::move(q_.front());
    q_.pop_front();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<FileEntry> q_;
  bool closed_ = false;
};

using DirId = std::pair<dev_t, ino_t>;

Status list_files(const fs::path& root, const Detector& det, const std::vector<DirId>& skip,
                  FileQueue& queue, ScanStats& stats) {
  std::error_code ec;
  std::vector<FileEntry> batch;
  uint64_t count = 0;
  std::string root_str = root.native();
  while (root_str.size() > 1 && root_str.back() == '/') root_str.pop_back();
  const size_t root_len = root_str == "/" ? 1 : root_str.size() + 1;
  auto add = [&](const std::string& p, std::string rel) {
    if (det.path_allowed(rel)) {
      ++stats.files_skipped_allowlisted;
    } else {
      batch.push_back({p, std::move(rel)});
      if (batch.size() >= 64) queue.push(batch);
    }
  };
  if (fs::is_regular_file(root, ec)) {
    // A file named on purpose may be a link: it is resolved here, once, and read with
    // O_NOFOLLOW like every other file.
    const fs::path real = fs::canonical(root, ec);
    add(ec ? root.native() : real.native(), root.generic_string());
    queue.push(batch);
    return Status::Ok();
  }
  if (!fs::is_directory(root, ec)) {
    return not_found("scan path " + root.string() + " is neither a file nor a directory");
  }
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return unavailable("cannot read directory " + root.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      ++stats.files_unreadable;
      ec.clear();
      continue;
    }
    const fs::directory_entry& e = *it;
    if (e.is_symlink(ec)) continue;  // never follow links out of the tree
    if (e.is_directory(ec)) {
      struct stat st {};
      if (e.path().filename() == ".git") {
        it.disable_recursion_pending();
      } else if (!skip.empty() && ::lstat(e.path().c_str(), &st) == 0 &&
                 std::find(skip.begin(), skip.end(), DirId{st.st_dev, st.st_ino}) != skip.end()) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (!e.is_regular_file(ec)) continue;
    if (++count > kMaxFiles) {
      return resource_exhausted("more than 10 million files under " + root.string());
    }
    // The path below root, cut from the string: cheaper than path::lexically_relative.
    const std::string& abs = e.path().native();
    std::string rel = abs.size() > root_len ? abs.substr(root_len) : abs;
    add(abs, rel);
  }
  queue.push(batch);
  return Status::Ok();
}

}  // namespace

Result<ScanReport> scan_path(const std::string& path, const ScanOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  const fs::path root(path);
  const bool is_dir = fs::is_directory(root, ec);
  if (!is_dir && !fs::is_regular_file(root, ec)) {  // before the detector is built
    return not_found("scan path " + root.string() + " is neither a file nor a directory");
  }
  auto setup = prepare_scan(is_dir ? root.string() : root.parent_path().string(), opts);
  if (!setup) return setup.status();
  const Detector& det = *setup->detector;

  ScanReport report;
  report.root = path;
  const unsigned nthreads = thread_count(opts);
  FileQueue queue;
  std::mutex mu;
  Status first_error;
  std::vector<Finding> findings;
  ScanStats totals;
  auto worker = [&] {
    auto scratch = det.new_scratch();
    if (!scratch) {
      std::lock_guard lk(mu);
      first_error = scratch.status();
      return;
    }
    ReadBuffer buf;
    std::string_view data;
    std::vector<Finding> local;
    ScanStats st;
    FileEntry f;
    while (queue.pop(f)) {
      const ReadResult rr = read_file(f.abs, opts.max_file_size, buf, data);
      if (rr == ReadResult::kTooLarge) {
        ++st.files_skipped_large;
        continue;
      }
      if (rr == ReadResult::kUnreadable) {
        ++st.files_unreadable;
        continue;
      }
      if (looks_binary(data)) {
        ++st.files_skipped_binary;
        continue;
      }
      const size_t before = local.size();
      Status s = det.detect(data, Fragment{f.rel, {}, nullptr}, **scratch, local);
      if (!s.ok()) {
        std::lock_guard lk(mu);
        if (first_error.ok()) first_error = s;
        continue;
      }
      ++st.files_scanned;
      st.bytes_scanned += data.size();
      if (opts.progress) {
        opts.progress->files.fetch_add(1, std::memory_order_relaxed);
        opts.progress->bytes.fetch_add(data.size(), std::memory_order_relaxed);
        opts.progress->findings.fetch_add(local.size() - before, std::memory_order_relaxed);
      }
    }
    std::lock_guard lk(mu);
    for (Finding& x : local) findings.push_back(std::move(x));
    totals.files_scanned += st.files_scanned;
    totals.bytes_scanned += st.bytes_scanned;
    totals.files_skipped_binary += st.files_skipped_binary;
    totals.files_skipped_large += st.files_skipped_large;
    totals.files_unreadable += st.files_unreadable;
  };
  // The walk runs beside the workers, so scanning starts with the first files found.
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < nthreads; ++t) pool.emplace_back(worker);
  std::vector<DirId> skip;
  for (const auto& d : opts.skip_dirs) {
    struct stat st {};
    if (::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) skip.emplace_back(st.st_dev, st.st_ino);
  }
  Status listed = list_files(root, det, skip, queue, report.stats);
  queue.close();
  for (auto& t : pool) t.join();
  FERRY_RETURN_IF_ERROR(listed);
  if (!first_error.ok()) return first_error;

  report.findings = std::move(findings);
  report.stats.files_scanned = totals.files_scanned;
  report.stats.bytes_scanned = totals.bytes_scanned;
  report.stats.files_skipped_binary = totals.files_skipped_binary;
  report.stats.files_skipped_large = totals.files_skipped_large;
  report.stats.files_unreadable += totals.files_unreadable;
  finish_report(*setup, report);
  report.stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace ferry::scan
