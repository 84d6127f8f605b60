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
  std::unique_ptr<Detector> detector;
  FingerprintSet ignored;
  FingerprintSet baseline;
};

// `root_dir` is where the default ignore files are looked for.
Result<ScanSetup> prepare_scan(const std::string& root_dir, const ScanOptions& opts);

// Fills in fingerprints, drops ignored and baselined findings (counting them), sorts.
void finish_report(const ScanSetup& setup, ScanReport& report);

unsigned thread_count(const ScanOptions& opts);

}  // namespace ferry::scan
