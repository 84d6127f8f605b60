#include "server/server_metrics.h"

#include "agent/status_metrics.h"
#include "core/agent_api.h"
#include "engine/reconciler.h"
#include "server/control_plane.h"
#include "store/store.h"

namespace ferry {

namespace {

template <typename T>
T* must(Result<T*> r) {
  // Names are constants of this file: a failure is a programming error caught by tests.
  return r.ok() ? *r : nullptr;
}

const std::vector<double>& duration_buckets() {
  static const std::vector<double> b{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return b;
}

const std::vector<double>& fast_buckets() {
  static const std::vector<double> b{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return b;
}

}  // namespace

std::string rollback_reason_label(const std::string& reason) {
  if (reason.find("analysis") != std::string::npos ||
      reason.find("error rate") != std::string::npos || reason.find("latency") != std::string::npos)
    return "analysis";
  if (reason.find("deadline") != std::string::npos || reason.find("ready") != std::string::npos)
    return "progress_deadline";
  if (reason.find("crash") != std::string::npos) return "crash_loop";
  if (reason.find("abort") != std::string::npos) return "aborted";
  if (reason.find("hook") != std::string::npos) return "hook";
  return "other";
}

ServerMetrics::ServerMetrics(ControlPlane& cp)
    : cp_(cp),
      agents_(
          [&cp] {
            // Every agent (its health), with the apps of every environment placed on it.
            std::map<std::string, AgentStatusCache::Target> by_name;
            for (const auto& [name, c] : cp.agent_clients()) by_name[name].client = c;
            auto config = cp.config();
            for (const auto& env : config->environments)
              for (AgentClient* a : cp.agents_for(env.name)) {
                auto& t = by_name[a->name()];
                if (!t.client) t.client = a;
                for (const auto& app : config->apps) t.apps.push_back({app.name, env.name});
              }
            std::vector<AgentStatusCache::Target> out;
            for (auto& [name, t] : by_name) out.push_back(std::move(t));
            return out;
          },
          cp.options().metrics_agents_ms) {
  deployments_ = must(registry_.counter(
      "ferry_deployments_total", "Deployments that ended, by result", {"app", "env", "result"}));
  rollbacks_ = must(registry_.counter("ferry_rollbacks_total", "Automatic and requested rollbacks",
                                      {"app", "env", "reason"}));
  deploy_duration_ = must(registry_.histogram("ferry_deployment_duration_seconds",
                                              "Time from creation to the end of a deployment",
                                              {"app", "env", "strategy"}, duration_buckets()));
  rollback_duration_ = must(registry_.histogram(
      "ferry_rollback_duration_seconds",
      "Time from the rollback decision until all traffic was back on the stable release",
      {"app", "env"}, fast_buckets()));
  hook_duration_ = must(registry_.histogram("ferry_hook_duration_seconds", "Hook run time",
                                            {"app", "hook"}, duration_buckets()));
  notifications_ = must(registry_.counter(
      "ferry_notifications_total", "Notification deliveries by final result", {"sink", "result"}));
  api_requests_ = must(registry_.counter("ferry_api_requests_total",
                                         "API requests by status code class", {"code_class"}));
  add_agent_callbacks();
  add_backup_callbacks();
  add_slo_callbacks();
  // Alerted counters start at 0 for every app and environment: a series that first
  // appears at 1 has no earlier sample for increase() to compare with.
  auto config = cp_.config();
  for (const auto& app : config->apps)
    for (const auto& env : config->environments) {
      for (auto result : final_deployment_states())
        deployments_->with({app.name, env.name, std::string(to_string(result))});
      for (const char* reason :
           {"analysis", "progress_deadline", "crash_loop", "aborted", "hook", "other"})
        rollbacks_->with({app.name, env.name, reason});
    }
}

void ServerMetrics::on_event(const DeploymentEvent& e, const DeploymentRecord& d) {
  if (e.type == EventType::kRollbackStarted) {
    rollbacks_->with({d.app, d.env, rollback_reason_label(d.reason)}).inc();
    if (e.data.contains("traffic_restored_ms"))
      rollback_duration_->with({d.app, d.env})
          .observe(e.data.value("traffic_restored_ms", int64_t{0}) / 1000.0);
  }
  if (e.type == EventType::kHookFinished)
    hook_duration_->with({d.app, e.data.value("hook", "")})
        .observe(e.data.value("duration_ms", 0.0) / 1000.0);
  if (!is_final(d.state)) return;
  {
    std::lock_guard lk(mu_);
    if (!finished_.insert(d.id).second) return;
    if (finished_.size() > 10'000) finished_.clear();
  }
  deployments_->with({d.app, d.env, std::string(to_string(d.state))}).inc();
  if (d.finished_at_ms > d.created_at_ms)
    deploy_duration_->with({d.app, d.env, d.strategy})
        .observe((d.finished_at_ms - d.created_at_ms) / 1000.0);
}

void ServerMetrics::on_delivery(const DeliveryRecord& r) {
  if (r.final) notifications_->with({r.sink, std::string(r.result())}).inc();
}

void ServerMetrics::on_request(int status) {
  api_requests_->with({std::to_string(status / 100) + "xx"}).inc();
}

void ServerMetrics::add_backup_callbacks() {
  // Read at scrape time: the scheduler exists only when server.backups is set.
  (void)registry_.callback(
      "ferry_backup_last_success_timestamp_seconds",
      "Unix time of the last backup that was made and passed its drill (0: none yet)",
      metrics::MetricType::kGauge, {}, [this] {
        std::vector<metrics::Sample> out;
        if (const auto* b = cp_.backups()) out.push_back({{}, b->last_success_unix()});
        return out;
      });
  (void)registry_.callback("ferry_backup_interval_seconds",
                           "server.backups.every: how often a backup is due",
                           metrics::MetricType::kGauge, {}, [this] {
                             std::vector<metrics::Sample> out;
                             if (cp_.backups())
                               out.push_back({{}, cp_.config()->server.backups.every_ms / 1000.0});
                             return out;
                           });
  (void)registry_.callback("ferry_backup_failures_total",
                           "Scheduled backups or drills that failed since the server started",
                           metrics::MetricType::kCounter, {}, [this] {
                             std::vector<metrics::Sample> out;
                             if (const auto* b = cp_.backups())
                               out.push_back({{}, static_cast<double>(b->failures())});
                             return out;
                           });
  (void)registry_.callback("ferry_backup_restore_drill_seconds",
                           "How long the last restore drill took (the recovery-time figure)",
                           metrics::MetricType::kGauge, {}, [this] {
                             std::vector<metrics::Sample> out;
                             if (const auto* b = cp_.backups())
                               out.push_back({{}, b->last_drill_seconds()});
                             return out;
                           });
}

void ServerMetrics::add_agent_callbacks() {
  // From the background reads (server/agent_status_cache.h): a scrape never waits on an
  // agent, so an unreachable one cannot make ferry's own scrape time out.
  (void)registry_.callback("ferry_agent_up", "1 when the agent answered its last health check",
                           metrics::MetricType::kGauge, {"agent"}, [this] {
                             std::vector<metrics::Sample> out;
                             for (const auto& [name, up] : agents_.snapshot()->agent_up)
                               out.push_back({{name}, up ? 1.0 : 0.0});
                             return out;
                           });
  (void)registry_.callback("ferry_agent_status_age_seconds",
                           "Age of the agents' figures in this scrape (read in the background)",
                           metrics::MetricType::kGauge, {}, [this] {
                             std::vector<metrics::Sample> out;
                             const double age = agents_.age_seconds();
                             if (age >= 0) out.push_back({{}, age});
                             return out;
                           });
  // What the engine's calls found (no extra call): 0 once a call got no answer, until one
  // does again.
  (void)registry_.callback(
      "ferry_agent_reachable", "1 when the last call of the engine to the agent was answered",
      metrics::MetricType::kGauge, {"agent"}, [this] {
        const auto reach = cp_.engine().reconciler().reachability();
        std::vector<metrics::Sample> out;
        for (const auto& [name, c] : cp_.agent_clients()) {
          auto it = reach.find(name);
          out.push_back({{name}, it == reach.end() || it->second.reachable ? 1.0 : 0.0});
        }
        return out;
      });
  // Generation lag: how many apps an agent has not taken the desired generation of yet,
  // and for how long the oldest of them has been behind.
  (void)registry_.callback("ferry_agent_apps_behind",
                           "Apps whose desired generation the agent has not reported",
                           metrics::MetricType::kGauge, {"agent"}, [this] {
                             std::map<std::string, int> behind;
                             for (const auto& [name, c] : cp_.agent_clients()) behind[name] = 0;
                             for (const auto& st : cp_.engine().reconciler().standings())
                               if (st.behind()) ++behind[st.agent];
                             std::vector<metrics::Sample> out;
                             for (const auto& [name, n] : behind)
                               out.push_back({{name}, static_cast<double>(n)});
                             return out;
                           });
  (void)registry_.callback(
      "ferry_agent_behind_seconds",
      "How long the agent's longest-behind app has waited for its desired generation",
      metrics::MetricType::kGauge, {"agent"}, [this] {
        const int64_t now = to_unix_ms(cp_.clock().now());
        std::map<std::string, double> secs;
        for (const auto& [name, c] : cp_.agent_clients()) secs[name] = 0;
        for (const auto& st : cp_.engine().reconciler().standings())
          if (st.behind() && st.behind_since_ms > 0)
            secs[st.agent] = std::max(secs[st.agent], (now - st.behind_since_ms) / 1000.0);
        std::vector<metrics::Sample> out;
        for (const auto& [name, v] : secs) out.push_back({{name}, v});
        return out;
      });
  // Every app of every environment, from the agents' last background read.
  register_status_metrics(registry_, {"app", "env"}, [this] {
    std::vector<StatusRow> rows;
    const auto snap = agents_.snapshot();
    for (const auto& a : snap->apps) rows.push_back({{a.app, a.env}, a.status});
    return rows;
  });
}

}  // namespace ferry
