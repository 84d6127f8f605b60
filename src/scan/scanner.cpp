#include "scan/scanner.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "scan/file_reader.h"
#include "scan/scan_setup.h"

namespace ferry::scan {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMaxFiles = 10'000'000;
constexpr size_t kBatchFiles = 64;

// An open directory of the tree; closed when the last task that needs it is done.
struct OpenDir {
  int fd = -1;
  std::string rel;  // below the root, '/'-separated; empty for the root itself
  OpenDir(int f, std::string r) : fd(f), rel(std::move(r)) {}
  ~OpenDir() {
    if (fd >= 0) ::close(fd);
  }
  OpenDir(const OpenDir&) = delete;
  OpenDir& operator=(const OpenDir&) = delete;
};

// Work for the pool: list directory `name` of `dir`, or read and scan the files `names`
// (NUL-separated) of `dir`. Files are opened relative to their directory's descriptor, so
// the kernel resolves one name per file instead of a whole path.
struct WalkTask {
  std::shared_ptr<OpenDir> dir;
  bool is_dir = false;
  std::string names;
};

// The pool's shared stack of tasks. Last in, first out: the files of a directory are read
// before its subdirectories are entered, so few directories stay open at once.
class TaskStack {
 public:
  void push(std::vector<WalkTask>& tasks) {
    if (tasks.empty()) return;
    {
      std::lock_guard lk(mu_);
      for (WalkTask& t : tasks) stack_.push_back(std::move(t));
    }
    tasks.clear();
    cv_.notify_all();
  }
  // False when every task is done (or the walk was stopped): nothing more will come.
  bool pop(WalkTask& out) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !stack_.empty() || busy_ == 0 || stopped_; });
    if (stack_.empty() || stopped_) return false;
    out = std::move(stack_.back());
    stack_.pop_back();
    ++busy_;
    return true;
  }
  void done() {
    std::lock_guard lk(mu_);
    if (--busy_ == 0 && stack_.empty()) cv_.notify_all();
  }
  void stop() {
    {
      std::lock_guard lk(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WalkTask> stack_;
  size_t busy_ = 0;
  bool stopped_ = false;
};

using DirId = std::pair<dev_t, ino_t>;

// Layout of the records getdents64(2) fills in.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

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
  std::mutex mu;  // guards first_error, findings, totals
  Status first_error;
  std::vector<Finding> findings;
  ScanStats totals;
  auto fail = [&](Status s) {
    std::lock_guard lk(mu);
    if (first_error.ok()) first_error = std::move(s);
  };

  // What one worker keeps for itself: nothing here is allocated per file.
  struct WorkerState {
    std::unique_ptr<Detector::Scratch> scratch;
    ReadBuffer buf;
    std::vector<Finding> local;
    ScanStats st;
    std::string rel;
  };
  auto scan_file = [&](WorkerState& w, int dirfd, const char* name, std::string_view rel) {
    if (det.path_allowed(rel)) {
      ++w.st.files_skipped_allowlisted;
      return;
    }
    std::string_view data;
    switch (read_file(dirfd, name, opts.max_file_size, w.buf, data)) {
      case ReadResult::kTooLarge:
        ++w.st.files_skipped_large;
        return;
      case ReadResult::kUnreadable:
        ++w.st.files_unreadable;
        return;
      case ReadResult::kBinary:
        ++w.st.files_skipped_binary;
        return;
      case ReadResult::kOk:
        break;
    }
    const size_t before = w.local.size();
    Status s = det.detect(data, Fragment{rel, {}, nullptr}, *w.scratch, w.local);
    if (!s.ok()) {
      fail(std::move(s));
      return;
    }
    ++w.st.files_scanned;
    w.st.bytes_scanned += data.size();
    if (opts.progress) {
      opts.progress->files.fetch_add(1, std::memory_order_relaxed);
      opts.progress->bytes.fetch_add(data.size(), std::memory_order_relaxed);
      opts.progress->findings.fetch_add(w.local.size() - before, std::memory_order_relaxed);
    }
  };
  auto merge = [&](WorkerState& w) {
    std::lock_guard lk(mu);
    for (Finding& x : w.local) findings.push_back(std::move(x));
    totals.files_scanned += w.st.files_scanned;
    totals.bytes_scanned += w.st.bytes_scanned;
    totals.files_skipped_binary += w.st.files_skipped_binary;
    totals.files_skipped_large += w.st.files_skipped_large;
    totals.files_skipped_allowlisted += w.st.files_skipped_allowlisted;
    totals.files_unreadable += w.st.files_unreadable;
  };
  // The scan's first worker confirms with the rules' shared RE2 programs, the others with
  // copies of their own (Detector::new_scratch).
  auto new_worker = [&](bool own_regexes) -> std::unique_ptr<WorkerState> {
    auto scratch = det.new_scratch(own_regexes);
    if (!scratch) {
      fail(scratch.status());
      return nullptr;
    }
    auto w = std::make_unique<WorkerState>();
    w->scratch = std::move(*scratch);
    return w;
  };

  if (!is_dir) {
    // A file named on purpose may be a link: it is resolved here, once, and read with
    // O_NOFOLLOW like every other file.
    const fs::path real = fs::canonical(root, ec);
    const std::string abs = ec ? root.native() : real.native();
    auto w = new_worker(false);
    if (w) {
      scan_file(*w, AT_FDCWD, abs.c_str(), root.generic_string());
      merge(*w);
    }
  } else {
    std::vector<DirId> skip;
    for (const auto& d : opts.skip_dirs) {
      struct stat st {};
      if (::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        skip.emplace_back(st.st_dev, st.st_ino);
    }
    const int root_fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
      return unavailable("cannot read directory " + root.string() + ": " + std::strerror(errno));
    }
    TaskStack tasks;
    std::atomic<uint64_t> nfiles{0};
    std::atomic<bool> too_many{false};
    {
      // The root is listed by the first worker to start, like any other directory.
      std::vector<WalkTask> first(1);
      first[0].dir = std::make_shared<OpenDir>(root_fd, std::string());
      first[0].is_dir = true;
      first[0].names = ".";
      tasks.push(first);
    }
    // Lists directory `name` of `parent`: its regular files become batches for the pool, its
    // subdirectories tasks of their own. Links, devices and FIFOs are never followed or read.
    auto list_dir = [&](WorkerState& w, const std::shared_ptr<OpenDir>& parent,
                        const std::string& name, std::vector<char>& dents,
                        std::vector<WalkTask>& out) {
      std::shared_ptr<OpenDir> dir;
      if (name == "." && parent->rel.empty()) {
        dir = parent;
      } else {
        const int fd =
            ::openat(parent->fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          if (errno != EACCES) ++w.st.files_unreadable;
          return;
        }
        if (!skip.empty()) {
          struct stat st {};
          if (::fstat(fd, &st) == 0 &&
              std::find(skip.begin(), skip.end(), DirId{st.st_dev, st.st_ino}) != skip.end()) {
            ::close(fd);
            return;
          }
        }
        dir = std::make_shared<OpenDir>(fd, parent->rel.empty() ? name : parent->rel + "/" + name);
      }
      std::vector<WalkTask> files;
      WalkTask batch;
      size_t in_batch = 0;
      auto flush = [&] {
        if (in_batch == 0) return;
        batch.dir = dir;
        files.push_back(std::move(batch));
        batch = WalkTask{};
        in_batch = 0;
      };
      for (;;) {
        const ssize_t n = ::getdents64(dir->fd, dents.data(), dents.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ++w.st.files_unreadable;
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
          const auto* d = reinterpret_cast<const LinuxDirent64*>(dents.data() + off);
          off += d->d_reclen;
          const char* nm = d->d_name;
          if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) continue;
          unsigned char type = d->d_type;
          if (type == DT_UNKNOWN) {
            struct stat st {};
            if (::fstatat(dir->fd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
          }
          if (type == DT_DIR) {
            if (std::strcmp(nm, ".git") == 0) continue;
            WalkTask t;
            t.dir = dir;
            t.is_dir = true;
            t.names = nm;
            out.push_back(std::move(t));
          } else if (type == DT_REG) {
            if (nfiles.fetch_add(1, std::memory_order_relaxed) >= kMaxFiles) {
              too_many = true;
              tasks.stop();
              return;
            }
            batch.names.append(nm, std::strlen(nm) + 1);
            if (++in_batch == kBatchFiles) flush();
          }
        }
      }
      flush();
      // Pushed above the subdirectories: the stack hands out this directory's files first.
      for (WalkTask& t : files) out.push_back(std::move(t));
    };
    auto worker = [&](bool own_regexes) {
      auto w = new_worker(own_regexes);
      if (!w) {
        tasks.stop();
        return;
      }
      std::vector<char> dents(64 * 1024);
      std::vector<WalkTask> out;
      WalkTask t;
      while (tasks.pop(t)) {
        if (t.is_dir) {
          list_dir(*w, t.dir, t.names, dents, out);
          tasks.push(out);
        } else {
          for (size_t at = 0; at < t.names.size();) {
            const char* nm = t.names.c_str() + at;
            const size_t len = std::strlen(nm);
            w->rel.assign(t.dir->rel);
            if (!w->rel.empty()) w->rel += '/';
            w->rel.append(nm, len);
            scan_file(*w, t.dir->fd, nm, w->rel);
            at += len + 1;
          }
        }
        t = WalkTask{};  // closes the directory when this was its last task
        tasks.done();
      }
      merge(*w);
    };
    const unsigned nthreads = thread_count(opts);
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < nthreads; ++i) pool.emplace_back(worker, true);
    worker(false);  // this thread is a worker too
    for (auto& th : pool) th.join();
    if (too_many) return resource_exhausted("more than 10 million files under " + root.string());
  }
  if (!first_error.ok()) return first_error;

  report.findings = std::move(findings);
  report.stats.files_scanned = totals.files_scanned;
  report.stats.bytes_scanned = totals.bytes_scanned;
  report.stats.files_skipped_binary = totals.files_skipped_binary;
  report.stats.files_skipped_large = totals.files_skipped_large;
  report.stats.files_skipped_allowlisted = totals.files_skipped_allowlisted;
  report.stats.files_unreadable = totals.files_unreadable;
  finish_report(*setup, report);
  report.stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace ferry::scan
