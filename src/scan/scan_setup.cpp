#include "scan/scan_setup.h"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>

#include "scan/rule_parser.h"

namespace ferry::scan {

Result<std::shared_ptr<const Detector>> default_detector(bool inline_allow,
                                                         const std::string& db_cache_dir) {
  // One slot per inline-allow setting; a failed build is not kept (the next call retries).
  static std::mutex mu;
  static std::shared_ptr<const Detector> built[2];
  std::lock_guard lk(mu);
  std::shared_ptr<const Detector>& slot = built[inline_allow ? 1 : 0];
  if (!slot) {
    auto det = Detector::create(default_rules(), db_cache_dir);
    if (!det) return det.status();
    (*det)->set_inline_allow(inline_allow);
    slot = std::move(*det);
  }
  return slot;
}

Result<ScanSetup> prepare_scan(const std::string& root_dir, const ScanOptions& opts) {
  ScanSetup setup;
  if (opts.config_path.empty()) {
    auto det = default_detector(opts.inline_allow, opts.db_cache_dir);
    if (!det) return det.status();
    setup.detector = std::move(*det);
  } else {
    auto loaded = load_rules(opts.config_path);
    if (!loaded) return loaded.status();
    auto det = Detector::create(std::move(*loaded), opts.db_cache_dir);
    if (!det) return det.status();
    (*det)->set_inline_allow(opts.inline_allow);
    setup.detector = std::move(*det);
  }
  if (!opts.ignore_file.empty()) {
    FERRY_RETURN_IF_ERROR(setup.ignored.load_ignore_file(opts.ignore_file));
  } else if (!opts.no_default_ignore_file && !root_dir.empty()) {
    for (const char* name : {".ferryignore", ".gitleaksignore"}) {
      const auto p = std::filesystem::path(root_dir) / name;
      std::error_code ec;
      if (std::filesystem::is_regular_file(p, ec)) {
        FERRY_RETURN_IF_ERROR(setup.ignored.load_ignore_file(p.string()));
        break;
      }
    }
  }
  if (!opts.baseline_path.empty()) {
    FERRY_RETURN_IF_ERROR(setup.baseline.load_baseline(opts.baseline_path));
  }
  return setup;
}

void finish_report(const ScanSetup& setup, ScanReport& report) {
  report.warnings = setup.detector->rules().warnings;
  std::vector<Finding> kept;
  kept.reserve(report.findings.size());
  for (Finding& f : report.findings) {
    f.fingerprint = fingerprint(f);
    if (setup.ignored.contains(f)) {
      ++report.stats.findings_ignored;
    } else if (setup.baseline.contains(f)) {
      ++report.stats.findings_baseline;
    } else {
      kept.push_back(std::move(f));
    }
  }
  // Git scans keep history order (newest first); directory scans sort by place.
  const bool git =
      std::any_of(kept.begin(), kept.end(), [](const Finding& f) { return !f.commit.empty(); });
  if (git) {
    report.findings = std::move(kept);
    return;
  }
  std::sort(kept.begin(), kept.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.file, a.line, a.column, a.rule_id) <
           std::tie(b.file, b.line, b.column, b.rule_id);
  });
  report.findings = std::move(kept);
}

unsigned thread_count(const ScanOptions& opts) {
  unsigned n = opts.threads ? opts.threads : std::thread::hardware_concurrency();
  return std::clamp(n, 1u, 256u);
}

}  // namespace ferry::scan
