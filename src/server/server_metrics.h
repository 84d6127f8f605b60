// The server's Prometheus metrics (docs/observability.md): deployments by result,
// deployment and rollback durations, hook durations, notification deliveries, and the
// agents' router and instance figures (read in the background: server/agent_status_cache.h).
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "common/metrics.h"
#include "notify/dispatcher.h"
#include "server/agent_status_cache.h"
#include "store/records.h"

namespace ferry {

class ControlPlane;

class ServerMetrics {
 public:
  explicit ServerMetrics(ControlPlane& cp);
  // Every committed deployment event.
  void on_event(const DeploymentEvent& e, const DeploymentRecord& d);
  void on_delivery(const DeliveryRecord& r);
  void on_request(int status);
  std::string expose() const { return registry_.expose(); }
  // The background reads of the agents' figures (from ControlPlane::start / stop).
  void start() { agents_.start(); }
  void stop() { agents_.stop(); }

 private:
  void add_agent_callbacks();
  void add_backup_callbacks();
  void add_slo_callbacks();  // slo_metrics.cpp

  ControlPlane& cp_;
  AgentStatusCache agents_;
  metrics::Registry registry_;
  metrics::CounterFamily* deployments_ = nullptr;
  metrics::CounterFamily* rollbacks_ = nullptr;
  metrics::HistogramFamily* deploy_duration_ = nullptr;
  metrics::HistogramFamily* rollback_duration_ = nullptr;
  metrics::HistogramFamily* hook_duration_ = nullptr;
  metrics::CounterFamily* notifications_ = nullptr;
  metrics::CounterFamily* api_requests_ = nullptr;
  std::mutex mu_;
  std::set<std::string> finished_;  // deployments already counted
};

// A short, bounded label for why a deployment was rolled back.
std::string rollback_reason_label(const std::string& reason);

}  // namespace ferry
