// Naming the host in an analysis verdict. The analysis adds up the routers of every host
// that runs the new release; when that total fails, the operator's first question is
// whether one host is the cause (a bad disk, a missing dependency, a network path). This
// compares each host's share of the new release's traffic with the rest, pure and small.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"

namespace ferry {

struct HostTraffic {
  std::string agent;
  uint64_t requests = 0;
  uint64_t errors = 0;  // 5xx and upstream errors, as the analysis counts them
};

struct WorstHost {
  std::string agent;
  double rate = 0;  // its error rate on the release
  std::string
      text;  // "on agent c: 12 of 40 request(s) of v2 failed (30.0%); 0 of 200 (0.0%) on a, b"
};

// The host whose error rate is much worse than the others' together: at least
// `min_errors` errors, at least `min_ratio` times the others' rate and 1 percentage point
// above it. Nothing with fewer than two hosts with requests, or when no host stands out
// (errors spread evenly are the release's, not a host's).
std::optional<WorstHost> worst_host(const std::vector<HostTraffic>& hosts,
                                    const std::string& release, double min_ratio = 3.0,
                                    uint64_t min_errors = 5);

// The host that fails a step on its own (analysis.per_host), whatever the sum over all
// hosts says: the worst_host() above (at least `min_errors` errors, 3× the others' rate and
// 1 point above it) whose own error rate is also above `max_error_rate`. So one bad host
// among many good ones cannot hide in the total, while a host that is merely the worst of
// several good ones (under the threshold) fails nothing.
std::optional<WorstHost> failing_host(const std::vector<HostTraffic>& hosts,
                                      const std::string& release, double max_error_rate,
                                      double min_ratio = 3.0, uint64_t min_errors = 5);

// {"a": {"requests": …, "errors": …}, …} for an event's data.
Json hosts_json(const std::vector<HostTraffic>& hosts);

}  // namespace ferry
