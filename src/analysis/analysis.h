// Step analysis: decides from the router's own per-release counters whether the new
// release is worse than the stable one — error rate, latency quantiles (absolute or as
// a ratio to stable), a Mann-Whitney U test on latencies, and optional PromQL queries.
// The verdict is pass, fail or inconclusive, always with the reasons. Pure apart from
// the optional PromQueryClient.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "core/agent_api.h"
#include "core/spec.h"

namespace ferry {

enum class Verdict { kPass, kFail, kInconclusive };
std::string_view to_string(Verdict v);

struct AnalysisResult {
  Verdict verdict = Verdict::kInconclusive;
  // Sentences, e.g. "error rate 12.5% > max 5.0% (25 of 200 requests)".
  std::vector<std::string> reasons;
  // The numbers behind the verdict (requests, error_rate, quantiles, U, p-value, ...).
  Json metrics = Json::object();
};

// What changed between two snapshots of the same release's cumulative counters:
// counters subtracted; of the recent latencies only the samples taken after `before`.
ReleaseStats stats_delta(const ReleaseStats& before, const ReleaseStats& now);

// Quantile q (0..1) in ms estimated from the histogram (linear within a bucket).
double histogram_quantile(const ReleaseStats& s, double q);

// (5xx + upstream errors) / requests; 0 with no requests.
double error_rate(const ReleaseStats& s);

struct MannWhitney {
  double u = 0;          // U statistic of `a`
  double z = 0;          // normal approximation with tie correction
  double p_greater = 1;  // one-sided p-value that `a` tends to be greater than `b`
  size_t n1 = 0, n2 = 0;
};
// Mann-Whitney U test of samples a and b.
MannWhitney mann_whitney(const std::vector<double>& a, const std::vector<double>& b);

// An instant PromQL query against a Prometheus HTTP API; a scalar, or a vector with one
// sample. Errors name the URL and the query.
class PromQueryClient {
 public:
  virtual ~PromQueryClient() = default;
  virtual Result<double> query(const std::string& base_url, const std::string& promql) = 0;
};

class HttpPromQueryClient final : public PromQueryClient {
 public:
  explicit HttpPromQueryClient(int timeout_ms = 5000) : timeout_ms_(timeout_ms) {}
  Result<double> query(const std::string& base_url, const std::string& promql) override;

 private:
  int timeout_ms_;
};

// {{app}}, {{release}}, {{env}} in `text` replaced by `vars` (quotes escaped).
std::string expand_query(const std::string& text, const std::map<std::string, std::string>& vars);

// One analysis evaluation. `stable` may be null (no baseline: ratio rules and the
// Mann-Whitney test are skipped, noted in the reasons); `prom` may be null (PromQL
// rules are then inconclusive).
AnalysisResult analyse(const AnalysisSpec& spec, const ReleaseStats& canary,
                       const ReleaseStats* stable, PromQueryClient* prom = nullptr,
                       const std::map<std::string, std::string>& vars = {});

}  // namespace ferry
