#include "scan/report.h"

#include <cstdio>
#include <map>

#include "scan/detector.h"

namespace ferry::scan {
namespace {

constexpr std::string_view kToolVersion = "0.1.0";

// The match with the secret replaced by its redacted form.
std::string shown_match(const Finding& f, bool redact_secret) {
  if (!redact_secret || f.secret.empty()) return f.match;
  std::string m = f.match;
  const std::string r = redact(f.secret);
  for (size_t pos = m.find(f.secret); pos != std::string::npos;
       pos = m.find(f.secret, pos + r.size())) {
    m.replace(pos, f.secret.size(), r);
  }
  return m;
}

std::string one_line(std::string s, size_t max) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ull << 30));
  } else if (b >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1ull << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  }
  return buf;
}

Json stats_json(const ScanStats& s) {
  return Json{{"files_scanned", s.files_scanned},
              {"bytes_scanned", s.bytes_scanned},
              {"files_skipped_binary", s.files_skipped_binary},
              {"files_skipped_large", s.files_skipped_large},
              {"files_skipped_allowlisted", s.files_skipped_allowlisted},
              {"files_unreadable", s.files_unreadable},
              {"commits_scanned", s.commits_scanned},
              {"findings_ignored", s.findings_ignored},
              {"findings_baseline", s.findings_baseline},
              {"seconds", s.seconds}};
}

}  // namespace

std::string report_text(const ScanReport& r, bool redact_secret) {
  std::string out;
  for (const Finding& f : r.findings) {
    out += f.file + ":" + std::to_string(f.line) + ":" + std::to_string(f.column) + ": " +
           f.rule_id + ": " + f.description + "\n";
    out += "  secret: " + (redact_secret ? redact(f.secret) : f.secret) + "\n";
    out += "  match:  " + one_line(shown_match(f, redact_secret), 160) + "\n";
    if (!f.commit.empty()) {
      out += "  commit: " + f.commit + " " + f.date + " " + f.author + " <" + f.email + ">\n";
      out += "          " + one_line(f.message, 100) + "\n";
    }
    out += "  fingerprint: " + f.fingerprint + "\n";
  }
  const ScanStats& s = r.stats;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2fs", s.seconds);
  out += std::to_string(r.findings.size()) + " finding(s) in " + r.root + "; scanned " +
         std::to_string(s.files_scanned) + " file(s), " + human_bytes(s.bytes_scanned);
  if (s.commits_scanned) out += " in " + std::to_string(s.commits_scanned) + " commit(s)";
  out += " in " + std::string(secs);
  if (s.files_skipped_binary || s.files_skipped_large) {
    out += "; skipped " + std::to_string(s.files_skipped_binary) + " binary and " +
           std::to_string(s.files_skipped_large) + " oversize file(s)";
  }
  if (s.findings_ignored || s.findings_baseline) {
    out += "; " + std::to_string(s.findings_ignored) + " ignored, " +
           std::to_string(s.findings_baseline) + " in baseline";
  }
  out += "\n";
  return out;
}

Json report_json(const ScanReport& r, bool redact_secret) {
  Json findings = Json::array();
  for (const Finding& f : r.findings) {
    Json j{{"rule_id", f.rule_id},
           {"description", f.description},
           {"file", f.file},
           {"line", f.line},
           {"column", f.column},
           {"end_line", f.end_line},
           {"end_column", f.end_column},
           {"secret", redact_secret ? redact(f.secret) : f.secret},
           {"match", shown_match(f, redact_secret)},
           {"entropy", f.entropy},
           {"fingerprint", f.fingerprint}};
    if (!f.commit.empty()) {
      j["commit"] = f.commit;
      j["author"] = f.author;
      j["email"] = f.email;
      j["date"] = f.date;
      j["message"] = f.message;
    }
    findings.push_back(std::move(j));
  }
  return Json{{"tool", "ferry scan"},
              {"version", 1},
              {"root", r.root},
              {"redacted", redact_secret},
              {"stats", stats_json(r.stats)},
              {"warnings", r.warnings},
              {"findings", std::move(findings)}};
}

Json report_sarif(const ScanReport& r, const RuleSet& rules, bool redact_secret) {
  Json sarif_rules = Json::array();
  std::map<std::string, size_t> index;
  for (const Rule& rule : rules.rules) {
    index[rule.id] = sarif_rules.size();
    Json sr{{"id", rule.id},
            {"name", rule.id},
            {"shortDescription", {{"text", rule.description}}},
            {"defaultConfiguration", {{"level", "error"}}}};
    if (!rule.tags.empty()) sr["properties"] = Json{{"tags", rule.tags}};
    sarif_rules.push_back(std::move(sr));
  }
  Json results = Json::array();
  for (const Finding& f : r.findings) {
    Json region{{"startLine", std::max(f.line, 1)},
                {"startColumn", std::max(f.column, 1)},
                {"endLine", std::max(f.end_line, 1)},
                {"endColumn", std::max(f.end_column + 1, 1)},
                {"snippet", {{"text", shown_match(f, redact_secret)}}}};
    Json result{{"ruleId", f.rule_id},
                {"level", "error"},
                {"message",
                 {{"text", f.description + ": " + (redact_secret ? redact(f.secret) : f.secret)}}},
                {"locations",
                 Json::array({{{"physicalLocation",
                                {{"artifactLocation", {{"uri", f.file}}}, {"region", region}}}}})},
                {"partialFingerprints", {{"secretFingerprint/v1", f.fingerprint}}}};
    if (auto it = index.find(f.rule_id); it != index.end()) result["ruleIndex"] = it->second;
    if (!f.commit.empty()) {
      result["properties"] = Json{{"commit", f.commit},
                                  {"author", f.author},
                                  {"email", f.email},
                                  {"date", f.date},
                                  {"message", f.message}};
    }
    results.push_back(std::move(result));
  }
  Json run{
      {"tool",
       {{"driver",
         {{"name", "ferry-scan"}, {"version", kToolVersion}, {"rules", std::move(sarif_rules)}}}}},
      {"results", std::move(results)}};
  return Json{{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
              {"version", "2.1.0"},
              {"runs", Json::array({std::move(run)})}};
}

}  // namespace ferry::scan
