#include "scan/scanner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
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
  uint64_t size;
};

// Reads the whole file into `buf` (reused across files by one worker).
bool read_file(const std::string& path, uint64_t size, std::string& buf) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  buf.resize(static_cast<size_t>(size));
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(got);  // the file may have shrunk since it was listed
  return true;
}

bool looks_binary(std::string_view data) {
  return std::memchr(data.data(), '\0', std::min(data.size(), kBinaryProbe)) != nullptr;
}

Status list_files(const fs::path& root, const Detector& det, const ScanOptions& opts,
                  std::vector<FileEntry>& files, ScanStats& stats) {
  std::error_code ec;
  auto add = [&](const fs::path& p, const std::string& rel, uint64_t size) {
    if (det.path_allowed(rel)) {
      ++stats.files_skipped_allowlisted;
    } else if (size > opts.max_file_size) {
      ++stats.files_skipped_large;
    } else {
      files.push_back({p.string(), rel, size});
    }
  };
  if (fs::is_regular_file(root, ec)) {
    add(root, root.generic_string(), fs::file_size(root, ec));
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
      if (e.path().filename() == ".git") it.disable_recursion_pending();
      continue;
    }
    if (!e.is_regular_file(ec)) continue;
    if (files.size() >= kMaxFiles) {
      return resource_exhausted("more than 10 million files under " + root.string());
    }
    add(e.path(), e.path().lexically_relative(root).generic_string(), e.file_size(ec));
  }
  return Status::Ok();
}

}  // namespace

Result<ScanReport> scan_path(const std::string& path, const ScanOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  const fs::path root(path);
  const bool is_dir = fs::is_directory(root, ec);
  auto setup = prepare_scan(is_dir ? root.string() : root.parent_path().string(), opts);
  if (!setup) return setup.status();
  const Detector& det = *setup->detector;

  ScanReport report;
  report.root = path;
  std::vector<FileEntry> files;
  FERRY_RETURN_IF_ERROR(list_files(root, det, opts, files, report.stats));
  // Big files first, so one late large file does not leave a single thread working.
  std::sort(files.begin(), files.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.size > b.size; });

  const unsigned nthreads =
      std::min<unsigned>(thread_count(opts), std::max<size_t>(files.size(), 1));
  std::atomic<size_t> next{0};
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
    std::string buf;
    std::vector<Finding> local;
    ScanStats st;
    for (size_t i = next++; i < files.size(); i = next++) {
      const FileEntry& f = files[i];
      if (!read_file(f.abs, f.size, buf)) {
        ++st.files_unreadable;
        continue;
      }
      if (looks_binary(buf)) {
        ++st.files_skipped_binary;
        continue;
      }
      const size_t before = local.size();
      Status s = det.detect(buf, Fragment{f.rel, {}, nullptr}, **scratch, local);
      if (!s.ok()) {
        std::lock_guard lk(mu);
        if (first_error.ok()) first_error = s;
        continue;
      }
      ++st.files_scanned;
      st.bytes_scanned += buf.size();
      if (opts.progress) {
        opts.progress->files.fetch_add(1, std::memory_order_relaxed);
        opts.progress->bytes.fetch_add(buf.size(), std::memory_order_relaxed);
        opts.progress->findings.fetch_add(local.size() - before, std::memory_order_relaxed);
      }
    }
    std::lock_guard lk(mu);
    for (Finding& f : local) findings.push_back(std::move(f));
    totals.files_scanned += st.files_scanned;
    totals.bytes_scanned += st.bytes_scanned;
    totals.files_skipped_binary += st.files_skipped_binary;
    totals.files_unreadable += st.files_unreadable;
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < nthreads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (!first_error.ok()) return first_error;

  report.findings = std::move(findings);
  report.stats.files_scanned = totals.files_scanned;
  report.stats.bytes_scanned = totals.bytes_scanned;
  report.stats.files_skipped_binary = totals.files_skipped_binary;
  report.stats.files_unreadable += totals.files_unreadable;
  finish_report(*setup, report);
  report.stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace ferry::scan
