#include "scan/scan_setup.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "scan/rule_parser.h"

namespace ferry::scan {

Result<ScanSetup> prepare_scan(const std::string& root_dir, const ScanOptions& opts) {
  ScanSetup setup;
  RuleSet rules;
  if (opts.config_path.empty()) {
    rules = default_rules();
  } else {
    auto loaded = load_rules(opts.config_path);
    if (!loaded) return loaded.status();
    rules = std::move(*loaded);
  }
  auto det = Detector::create(std::move(rules));
  if (!det) return det.status();
  setup.detector = std::move(*det);
  setup.detector->set_inline_allow(opts.inline_allow);
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
