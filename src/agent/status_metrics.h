// The Prometheus families computed from AppStatus at scrape time: router requests by
// status class and latency per release, instance up and restarts. The agent registers
// them over its own apps, the server over every agent's apps (with an env label).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "core/agent_api.h"

namespace ferry {

struct StatusRow {
  metrics::LabelValues labels;  // values of the leading labels, e.g. {app} or {app, env}
  AppStatus status;
};
using StatusRows = std::function<std::vector<StatusRow>()>;

// `labels` names the leading labels every row gives values for.
void register_status_metrics(metrics::Registry& registry, const std::vector<std::string>& labels,
                             StatusRows rows);

}  // namespace ferry
