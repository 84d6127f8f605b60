// What scan_path and scan_git share: building the detector and applying ignore/baseline.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "scan/detector.h"
#include "scan/ignore.h"
#include "scan/scanner.h"

namespace ferry::scan {

struct ScanSetup {
  // Shared: the detector of the default rules is built once per process (see
  // default_detector) and used by every scan that does not name a config.
  std::shared_ptr<const Detector> detector;
  FingerprintSet ignored;
  FingerprintSet baseline;
};

// `root_dir` is where the default ignore files are looked for.
Result<ScanSetup> prepare_scan(const std::string& root_dir, const ScanOptions& opts);

// Fills in fingerprints, drops ignored and baselined findings (counting them), sorts.
void finish_report(const ScanSetup& setup, ScanReport& report);

// The detector of the built-in rules, built on first use and kept for the process: a server
// gating every release, or a test binary scanning many trees, pays the Vectorscan and RE2
// compilation once. Thread-safe. `db_cache_dir` is used by the first build only.
Result<std::shared_ptr<const Detector>> default_detector(bool inline_allow,
                                                         const std::string& db_cache_dir = {});

unsigned thread_count(const ScanOptions& opts);

}  // namespace ferry::scan
