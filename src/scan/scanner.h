// The scanner's library API: what `ferry scan` and the release gate call.
//
//   ScanOptions opts;                       // default rules, no baseline, all cores
//   auto report = scan_path("/src/web", opts);
//   if (!report.ok()) ...                   // bad rule file, unreadable root: an error
//   if (!report->findings.empty()) ...      // secrets found: the gate fails
//
// Secrets are kept in Finding::secret in memory; redact them (redact()) before they leave
// the process; the reporters (report.h) do so unless told not to.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "scan/finding.h"

namespace ferry::scan {

// Counters a caller may watch from another thread while a scan runs (progress display).
struct ScanProgress {
  std::atomic<uint64_t> files{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> findings{0};
};

struct ScanOptions {
  std::string config_path;  // gitleaks-format TOML rule file; empty: the built-in rules
  // Fingerprint file; empty: <root>/.ferryignore, else <root>/.gitleaksignore, if present.
  std::string ignore_file;
  bool no_default_ignore_file = false;   // do not look for the default ignore files
  std::string baseline_path;             // an earlier JSON report: its findings are dropped
  uint64_t max_file_size = 20ull << 20;  // larger files (and git blobs) are skipped
  unsigned threads = 0;                  // 0: all cores
  std::string since;                     // git scans: only commits after this revision (exclusive)
  uint64_t max_commits = 0;              // git scans: 0 = no limit
  ScanProgress* progress = nullptr;      // optional, updated while scanning
  // Directories the walk does not enter, matched by device and inode (so they are found
  // whatever path leads to them); the release gate skips the server's data_dir.
  std::vector<std::string> skip_dirs;
  // Inline "ferry:allow" / "gitleaks:allow" comments drop findings; the release gate
  // sets this false (like the tree's ignore files, they are the author's own say-so).
  bool inline_allow = true;
  // Where compiled Vectorscan databases are cached between processes (db_cache.h; `ferry
  // scan` uses default_db_cache_dir()); empty: compile every time.
  std::string db_cache_dir;
};

// Scans a directory tree (recursively, not following symlinks, skipping .git) or one file.
// Files are those the directory listing calls regular, opened with O_NOFOLLOW | O_NONBLOCK:
// a link swapped in during the walk is not followed, a FIFO or device is never waited on and
// is refused unless a FIFO's writer has a little data ready (read_file in file_reader.h).
// Binary files (a NUL byte in the first 8 KiB) and files over max_file_size are skipped
// and counted in stats. Findings are sorted by file, line, column.
Result<ScanReport> scan_path(const std::string& path, const ScanOptions& opts);

// Scans the lines added by each non-merge commit reachable from HEAD of the repository at
// `repo` (after `since`, if set), newest first, commits spread over `threads` workers.
// Memory is bounded by one commit diff per thread plus 20 bytes per commit id.
Result<ScanReport> scan_git(const std::string& repo, const ScanOptions& opts);

}  // namespace ferry::scan
