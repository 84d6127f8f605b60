#include "agent/status_metrics.h"

namespace ferry {

namespace {

std::vector<std::string> with(std::vector<std::string> v, std::initializer_list<std::string> more) {
  v.insert(v.end(), more);
  return v;
}

}  // namespace

void register_status_metrics(metrics::Registry& registry, const std::vector<std::string>& labels,
                             StatusRows rows) {
  (void)registry.callback(
      "ferry_router_requests_total", "Requests the routers answered, by release and status class",
      metrics::MetricType::kCounter, with(labels, {"release", "code_class"}), [rows] {
        std::vector<metrics::Sample> out;
        for (const auto& r : rows())
          for (const auto& s : r.status.releases) {
            const std::pair<const char*, uint64_t> classes[] = {{"1xx", s.status_1xx},
                                                                {"2xx", s.status_2xx},
                                                                {"3xx", s.status_3xx},
                                                                {"4xx", s.status_4xx},
                                                                {"5xx", s.status_5xx}};
            for (const auto& [cls, n] : classes)
              out.push_back({with(r.labels, {s.release, cls}), static_cast<double>(n)});
          }
        return out;
      });
  // Failures of a non-stable release that the canary shield answered from the stable one
  // (also counted above as the failures they were), and pinned requests, which the
  // requests family and the analysis never see.
  const std::pair<const char*, const char*> per_release[] = {
      {"ferry_router_shielded_total",
       "Canary failures the router answered from the stable release instead, by release"},
      {"ferry_router_pinned_requests_total",
       "Requests pinned to a release with the pin header (kept out of the analysis)"}};
  for (const auto& [name, help] : per_release) {
    bool shielded = std::string_view(name) == "ferry_router_shielded_total";
    (void)registry.callback(
        name, help, metrics::MetricType::kCounter, with(labels, {"release"}), [rows, shielded] {
          std::vector<metrics::Sample> out;
          for (const auto& r : rows())
            for (const auto& s : r.status.releases)
              out.push_back({with(r.labels, {s.release}),
                             static_cast<double>(shielded ? s.shielded : s.pinned_requests)});
          return out;
        });
  }
  (void)registry.callback_histogram(
      "ferry_router_request_duration_seconds", "Router request latency by release",
      with(labels, {"release"}), [rows] {
        std::vector<metrics::HistogramSample> out;
        const auto& bounds_ms = latency_buckets_ms();
        for (const auto& r : rows())
          for (const auto& s : r.status.releases) {
            metrics::HistogramSample h;
            h.labels = with(r.labels, {s.release});
            uint64_t cum = 0;
            for (size_t i = 0; i < s.latency_counts.size(); ++i) {
              cum += s.latency_counts[i];
              if (i < bounds_ms.size()) {  // the last count is the overflow (+Inf) bucket
                h.bounds.push_back(bounds_ms[i] / 1000.0);
                h.cumulative.push_back(cum);
              }
            }
            h.count = cum;
            h.sum = s.latency_sum_ms / 1000.0;
            out.push_back(std::move(h));
          }
        return out;
      });
  (void)registry.callback("ferry_instance_up", "1 when the instance is ready",
                          metrics::MetricType::kGauge, with(labels, {"release", "instance"}),
                          [rows] {
                            std::vector<metrics::Sample> out;
                            for (const auto& r : rows())
                              for (const auto& i : r.status.instances)
                                out.push_back({with(r.labels, {i.release, i.id}),
                                               i.state == InstanceState::kReady ? 1.0 : 0.0});
                            return out;
                          });
  (void)registry.callback(
      "ferry_instance_restarts_total",
      "Restarts of an instance after it crashed or failed liveness", metrics::MetricType::kCounter,
      with(labels, {"release", "instance"}), [rows] {
        std::vector<metrics::Sample> out;
        for (const auto& r : rows())
          for (const auto& i : r.status.instances)
            out.push_back({with(r.labels, {i.release, i.id}), static_cast<double>(i.restarts)});
        return out;
      });
}

}  // namespace ferry
