#include "engine/host_verdict.h"

#include <fmt/format.h>

namespace ferry {

std::optional<WorstHost> worst_host(const std::vector<HostTraffic>& hosts,
                                    const std::string& release, double min_ratio,
                                    uint64_t min_errors) {
  int with_requests = 0;
  for (const auto& h : hosts)
    if (h.requests > 0) ++with_requests;
  if (with_requests < 2) return std::nullopt;
  const HostTraffic* worst = nullptr;
  double worst_rate = -1;
  for (const auto& h : hosts) {
    if (h.requests == 0) continue;
    const double rate = static_cast<double>(h.errors) / static_cast<double>(h.requests);
    if (rate > worst_rate) {
      worst_rate = rate;
      worst = &h;
    }
  }
  if (!worst || worst->errors < min_errors) return std::nullopt;
  uint64_t req = 0, err = 0;
  std::string others;
  for (const auto& h : hosts) {
    if (&h == worst || h.requests == 0) continue;
    req += h.requests;
    err += h.errors;
    others += (others.empty() ? "" : ", ") + h.agent;
  }
  const double rest = req ? static_cast<double>(err) / static_cast<double>(req) : 0.0;
  if (worst_rate < rest * min_ratio || worst_rate - rest < 0.01) return std::nullopt;
  return WorstHost{worst->agent, worst_rate,
                   fmt::format("on agent {}: {} of {} request(s) of {} failed ({:.1f}%); {} of {} "
                               "({:.1f}%) on {}",
                               worst->agent, worst->errors, worst->requests, release,
                               worst_rate * 100, err, req, rest * 100, others)};
}

std::optional<WorstHost> failing_host(const std::vector<HostTraffic>& hosts,
                                      const std::string& release, double max_error_rate,
                                      double min_ratio, uint64_t min_errors) {
  auto w = worst_host(hosts, release, min_ratio, min_errors);
  if (!w || w->rate <= max_error_rate) return std::nullopt;
  return w;
}

Json hosts_json(const std::vector<HostTraffic>& hosts) {
  Json j = Json::object();
  for (const auto& h : hosts) j[h.agent] = Json{{"requests", h.requests}, {"errors", h.errors}};
  return j;
}

}  // namespace ferry
