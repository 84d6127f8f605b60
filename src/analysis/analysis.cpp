#include "analysis/analysis.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/http_client.h"

namespace ferry {

namespace {

double quantile_of(const std::string& metric) {
  if (metric == "p50") return 0.50;
  if (metric == "p90") return 0.90;
  if (metric == "p95") return 0.95;
  if (metric == "p99") return 0.99;
  return -1;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    case Verdict::kInconclusive: return "inconclusive";
  }
  return "inconclusive";
}

std::string expand_query(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "{{") == 0) {
      size_t end = text.find("}}", i + 2);
      if (end != std::string::npos) {
        auto it = vars.find(text.substr(i + 2, end - i - 2));
        if (it != vars.end()) {
          for (char c : it->second) {
            if (c == '"' || c == '\\') out.push_back('\\');
            out.push_back(c);
          }
          i = end + 2;
          continue;
        }
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

Result<double> HttpPromQueryClient::query(const std::string& base_url, const std::string& promql) {
  auto ep = parse_endpoint(base_url);
  if (!ep.ok()) return ep.status().with_context("prometheus url");
  HttpClient c(*ep, {.timeout_ms = timeout_ms_, .max_response_bytes = 1 << 20});
  const std::string where = "query '" + promql + "' at " + base_url;
  auto r = c.request("GET", "/api/v1/query?query=" + url_encode(promql));
  if (!r.ok()) return r.status().with_context(where);
  auto j = parse_json(r->body, "Prometheus answer");
  if (!j.ok()) return j.status().with_context(where);
  if (r->status != 200 || j->value("status", "") != "success")
    return unavailable(where + " failed: HTTP " + std::to_string(r->status) + " " +
                       j->value("error", std::string()));
  const Json& data = (*j)["data"];
  const std::string type = data.value("resultType", "");
  Json value;
  if (type == "scalar") {
    value = data["result"];
  } else if (type == "vector") {
    if (data["result"].size() != 1)
      return invalid_argument(where + " returned " + std::to_string(data["result"].size()) +
                              " series; it must return exactly one");
    value = data["result"][0]["value"];
  } else {
    return invalid_argument(where + " returned a " + type + "; it must return a scalar or vector");
  }
  if (!value.is_array() || value.size() != 2 || !value[1].is_string())
    return invalid_argument(where + " returned a malformed sample");
  try {
    return std::stod(value[1].get<std::string>());
  } catch (...) {
    return invalid_argument(where + " returned a non-number: " + value[1].get<std::string>());
  }
}

AnalysisResult analyse(const AnalysisSpec& spec, const ReleaseStats& canary,
                       const ReleaseStats* stable, PromQueryClient* prom,
                       const std::map<std::string, std::string>& vars) {
  AnalysisResult out;
  std::vector<std::string> fails, unsure, passes;
  Json& m = out.metrics;
  m["requests"] = canary.requests;
  const double err = error_rate(canary);
  m["error_rate"] = err;
  const bool stable_ok = stable && stable->requests >= static_cast<uint64_t>(spec.min_requests);
  if (stable) {
    m["stable_requests"] = stable->requests;
    m["stable_error_rate"] = error_rate(*stable);
  }

  if (canary.requests < static_cast<uint64_t>(std::max<int64_t>(spec.min_requests, 1))) {
    unsure.push_back(fmt::format("{} requests < min {}", canary.requests, spec.min_requests));
  } else {
    // Error rate.
    const std::string er = fmt::format("error rate {:.1f}% {} max {:.1f}% ({} of {} requests)",
                                       err * 100, err > spec.max_error_rate ? ">" : "≤",
                                       spec.max_error_rate * 100,
                                       canary.status_5xx + canary.upstream_errors, canary.requests);
    (err > spec.max_error_rate ? fails : passes).push_back(er);

    // Latency quantiles, absolute and relative to stable.
    for (const auto& rule : spec.latency) {
      const double q = quantile_of(rule.metric);
      if (q < 0) {
        unsure.push_back("unknown latency metric " + rule.metric);
        continue;
      }
      const double v = histogram_quantile(canary, q);
      m[rule.metric + "_ms"] = v;
      if (rule.max_ms > 0) {
        const std::string s = fmt::format("{} {:.0f} ms {} max {:.0f} ms", rule.metric, v,
                                          v > rule.max_ms ? ">" : "≤", rule.max_ms);
        (v > rule.max_ms ? fails : passes).push_back(s);
      }
      if (rule.max_ratio > 0) {
        if (!stable_ok) {
          passes.push_back(rule.metric + " ratio not checked: no stable baseline with enough requests");
          continue;
        }
        const double sv = histogram_quantile(*stable, q);
        m["stable_" + rule.metric + "_ms"] = sv;
        const double ratio = sv > 0 ? v / sv : (v > 0 ? INFINITY : 1.0);
        const std::string s = fmt::format("{} {:.0f} ms is {:.2f}× stable ({:.0f} ms) {} max {:.2f}×",
                                          rule.metric, v, ratio, sv,
                                          ratio > rule.max_ratio ? ">" : "≤", rule.max_ratio);
        (ratio > rule.max_ratio ? fails : passes).push_back(s);
      }
    }

    // Mann-Whitney: is the canary slower than stable, beyond noise?
    if (spec.mann_whitney) {
      if (!stable_ok || stable->recent_latencies_ms.size() < 8 ||
          canary.recent_latencies_ms.size() < 8) {
        passes.push_back("latency comparison skipped: too few samples for both releases");
      } else {
        const auto mw = mann_whitney(canary.recent_latencies_ms, stable->recent_latencies_ms);
        const double cm = median(canary.recent_latencies_ms);
        const double sm = median(stable->recent_latencies_ms);
        m["mann_whitney"] = Json{{"u", mw.u}, {"z", mw.z}, {"p", mw.p_greater},
                                 {"n_canary", mw.n1}, {"n_stable", mw.n2},
                                 {"median_canary_ms", cm}, {"median_stable_ms", sm}};
        const double alpha = 1.0 - spec.confidence;
        // Significant AND meaningful: a 0.3 ms difference on 2 ms requests is not a regression.
        const bool slower = mw.p_greater < alpha && cm >= 1.1 * sm && cm - sm >= 1.0;
        const std::string s = fmt::format(
            "latency vs stable: median {:.1f} ms vs {:.1f} ms, p={:.4f} (fail below {:.2f})", cm,
            sm, mw.p_greater, alpha);
        (slower ? fails : passes).push_back(s);
      }
    }
  }

  // PromQL checks from the user's Prometheus.
  for (const auto& pq : spec.prometheus) {
    if (!prom) {
      unsure.push_back("prometheus check " + pq.name + " has no client");
      continue;
    }
    auto v = prom->query(pq.url, expand_query(pq.query, vars));
    if (!v.ok()) {
      unsure.push_back("prometheus check " + pq.name + ": " + v.status().message());
      continue;
    }
    m["prometheus"][pq.name] = *v;
    if (pq.max && *v > *pq.max)
      fails.push_back(fmt::format("prometheus {} = {:g} > max {:g}", pq.name, *v, *pq.max));
    else if (pq.min && *v < *pq.min)
      fails.push_back(fmt::format("prometheus {} = {:g} < min {:g}", pq.name, *v, *pq.min));
    else
      passes.push_back(fmt::format("prometheus {} = {:g} within bounds", pq.name, *v));
  }

  if (!fails.empty()) {
    out.verdict = Verdict::kFail;
    out.reasons = fails;
  } else if (!unsure.empty()) {
    out.verdict = Verdict::kInconclusive;
    out.reasons = unsure;
  } else {
    out.verdict = Verdict::kPass;
    out.reasons = passes;
  }
  return out;
}

}  // namespace ferry
