// What a scan found and how much it looked at.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::scan {

struct Finding {
  std::string rule_id;
  std::string description;
  std::string file;  // relative to the scanned root, '/'-separated
  int line = 0;      // 1-based; in git scans the line in the file as of `commit`
  int column = 0;    // 1-based byte column of the secret
  int end_line = 0;
  int end_column = 0;  // 1-based, inclusive
  std::string secret;  // the secret itself: reporters redact it unless told not to
  std::string match;   // the whole regex match (contains the secret)
  double entropy = 0;
  // Git scans only.
  std::string commit;
  std::string author;
  std::string email;
  std::string date;  // ISO 8601, UTC
  std::string message;
  // [commit:]file:rule:sha256(secret)[0:16]; stable across line moves, see ignore.h.
  std::string fingerprint;
};

struct ScanStats {
  uint64_t files_scanned = 0;
  uint64_t bytes_scanned = 0;
  uint64_t files_skipped_binary = 0;
  uint64_t files_skipped_large = 0;
  uint64_t files_skipped_allowlisted = 0;
  uint64_t files_unreadable = 0;
  uint64_t commits_scanned = 0;
  uint64_t findings_ignored = 0;   // dropped by the ignore file
  uint64_t findings_baseline = 0;  // dropped because the baseline has them
  double seconds = 0;
};

struct ScanReport {
  std::string root;  // the path or repository scanned
  std::vector<Finding> findings;
  ScanStats stats;
  std::vector<std::string> warnings;  // rule file fields ferry ignored
};

// Redacts a secret for output: a short prefix (at most 4 bytes, a fifth of it) and "****".
std::string redact(std::string_view secret);

}  // namespace ferry::scan
