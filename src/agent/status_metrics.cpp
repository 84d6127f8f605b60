#include "agent/status_metrics.h"

namespace ferry {

namespace {

std::vector<std::string> with(std::vector<std::string> v, std::initializer_list<std::string> more) {
  v.insert(v.end(), more);
  return v;
}

// The edge families (docs/router.md, "Status and metrics"): certificate reloads, access log
// lines and ACME certificates, one sample per app (ACME ones only for apps with tls.acme).
void register_edge_metrics(metrics::Registry& registry, const std::vector<std::string>& labels,
                           const StatusRows& rows) {
  struct Family {
    const char* name;
    const char* help;
    metrics::MetricType type;
    bool acme;  // only apps with tls.acme, else only apps with TLS
    double (*value)(const EdgeStatus&);
  };
  static const Family kFamilies[] = {
      {"ferry_router_tls_reloads_total", "Certificate sets the router loaded after a change",
       metrics::MetricType::kCounter, false,
       [](const EdgeStatus& e) { return static_cast<double>(e.tls_reloads); }},
      {"ferry_router_tls_reload_failures_total",
       "Changed certificate files the router could not load (it kept the previous set)",
       metrics::MetricType::kCounter, false,
       [](const EdgeStatus& e) { return static_cast<double>(e.tls_reload_failures); }},
      {"ferry_router_tls_reload_failing", "1 while the last certificate reload failed",
       metrics::MetricType::kGauge, false,
       [](const EdgeStatus& e) { return e.tls_error.empty() ? 0.0 : 1.0; }},
      {"ferry_acme_certificate_failing",
       "1 while the last ACME order for the app's certificate failed", metrics::MetricType::kGauge,
       true, [](const EdgeStatus& e) { return e.acme_state == "failing" ? 1.0 : 0.0; }},
      {"ferry_acme_order_failures_total", "Failed ACME orders since the agent started",
       metrics::MetricType::kCounter, true,
       [](const EdgeStatus& e) { return static_cast<double>(e.acme_failures); }},
      {"ferry_acme_certificates_issued_total",
       "Certificates obtained over ACME since the agent started", metrics::MetricType::kCounter,
       true, [](const EdgeStatus& e) { return static_cast<double>(e.acme_issued); }},
      {"ferry_acme_certificate_expiry_timestamp_seconds",
       "When the served ACME certificate expires (0: none issued yet, a placeholder serves)",
       metrics::MetricType::kGauge, true,
       [](const EdgeStatus& e) { return static_cast<double>(e.cert_not_after_ms) / 1000.0; }},
  };
  for (const Family& f : kFamilies) {
    (void)registry.callback(f.name, f.help, f.type, labels, [rows, &f] {
      std::vector<metrics::Sample> out;
      for (const auto& r : rows())
        if (f.acme ? !r.status.edge.acme_state.empty() : r.status.edge.tls)
          out.push_back({r.labels, f.value(r.status.edge)});
      return out;
    });
  }
  (void)registry.callback(
      "ferry_router_h2_abuse_total",
      "HTTP/2 connections the router cut off, by reason: rapid_reset, flood, protocol_error",
      metrics::MetricType::kCounter, with(labels, {"reason"}), [rows] {
        std::vector<metrics::Sample> out;
        for (const auto& r : rows()) {
          const EdgeStatus& e = r.status.edge;
          if (!e.tls) continue;
          out.push_back(
              {with(r.labels, {"rapid_reset"}), static_cast<double>(e.h2_abuse_rapid_reset)});
          out.push_back({with(r.labels, {"flood"}), static_cast<double>(e.h2_abuse_flood)});
          out.push_back(
              {with(r.labels, {"protocol_error"}), static_cast<double>(e.h2_abuse_protocol_error)});
        }
        return out;
      });
  (void)registry.callback(
      "ferry_router_access_log_lines_total",
      "Access log lines by outcome: written, or dropped (queue full or a write error)",
      metrics::MetricType::kCounter, with(labels, {"outcome"}), [rows] {
        std::vector<metrics::Sample> out;
        for (const auto& r : rows()) {
          if (!r.status.edge.access_log) continue;
          out.push_back(
              {with(r.labels, {"written"}), static_cast<double>(r.status.edge.access_log_written)});
          out.push_back(
              {with(r.labels, {"dropped"}), static_cast<double>(r.status.edge.access_log_dropped)});
        }
        return out;
      });
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
  register_edge_metrics(registry, labels, rows);
}

}  // namespace ferry
