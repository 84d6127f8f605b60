// Writes a ScanReport as text (for people), JSON (for tools and --baseline) or SARIF 2.1.0
// (for code-scanning dashboards). Secrets are redacted unless `redact` is false.
#pragma once

#include <string>

#include "common/json.h"
#include "scan/finding.h"
#include "scan/rule.h"

namespace ferry::scan {

enum class ReportFormat { kText, kJson, kSarif };

std::string report_text(const ScanReport& r, bool redact);
Json report_json(const ScanReport& r, bool redact);
// `rules` fills the SARIF tool.driver.rules list, so results can point at their rule.
Json report_sarif(const ScanReport& r, const RuleSet& rules, bool redact);

}  // namespace ferry::scan
