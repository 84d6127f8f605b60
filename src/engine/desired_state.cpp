#include "engine/desired_state.h"

#include <algorithm>

namespace ferry {

RunSpec release_run(const ReleaseRecord& r, const AppSpec& app) {
  if (r.config.is_object() && r.config.contains("run")) return r.config["run"].get<RunSpec>();
  return app.run;
}

ChecksSpec release_checks(const ReleaseRecord& r, const AppSpec& app) {
  if (r.config.is_object() && r.config.contains("checks"))
    return r.config["checks"].get<ChecksSpec>();
  return app.checks;
}

static std::string escape_dollars(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    out += c;
    if (c == '$') out += '$';
  }
  return out;
}

static void add_instances(AppDesiredState& out, const DesiredInputs& in, const ReleaseRecord& rel,
                          int count, const std::vector<int>& slots) {
  for (int i = 0; i < count; ++i) {
    InstanceSpec s;
    // The slot, not the position on this agent: ids are unique across the hosts.
    const int slot = slots.empty() ? i : slots[static_cast<size_t>(i)];
    s.id = in.agent_app + "-" + rel.version + "-" + std::to_string(slot);
    s.release = rel.version;
    s.run = release_run(rel, *in.app);
    s.checks = release_checks(rel, *in.app);
    for (const auto& [k, v] : in.app->run.env) s.run.env.try_emplace(k, v);
    // The agent expands $NAME in environment values; a secret is taken literally.
    for (const auto& [k, v] : in.secrets) s.run.env[k] = escape_dollars(v);
    // FERRY_APP and FERRY_ENV: the agent sets them from app_name and env (agent_server.cpp).
    s.run.env["FERRY_RELEASE"] = rel.version;
    out.instances.push_back(std::move(s));
  }
}

AppDesiredState build_desired_state(const DesiredInputs& in, int64_t generation) {
  AppDesiredState out;
  out.app = in.agent_app;
  out.app_name = in.app->name;
  out.env = in.env;
  out.generation = generation;
  out.listen_host = in.listen_host.empty() ? in.app->listen : in.listen_host;
  out.listen_port = in.app->port;
  out.router = in.app->router;
  if (in.old_release)
    out.stable_release = in.old_release->version;
  else if (in.new_release)
    out.stable_release = in.new_release->version;
  const int new_count = in.new_slots.empty() ? in.new_count : static_cast<int>(in.new_slots.size());
  const int old_count = in.old_slots.empty() ? in.old_count : static_cast<int>(in.old_slots.size());
  if (in.new_release) add_instances(out, in, *in.new_release, new_count, in.new_slots);
  if (in.old_release) add_instances(out, in, *in.old_release, old_count, in.old_slots);
  out.weights = traffic_weights(in.new_release ? in.new_release->version : "",
                                in.old_release ? in.old_release->version : "", in.new_weight,
                                new_count, old_count);
  return out;
}

std::map<std::string, int> traffic_weights(const std::string& new_release,
                                           const std::string& old_release, int new_weight,
                                           int new_count, int old_count) {
  std::map<std::string, int> w;
  new_weight = std::clamp(new_weight, 0, 100);
  if (old_release.empty() || old_count == 0) {
    if (!new_release.empty() && new_count > 0) w[new_release] = 100;
    return w;
  }
  if (new_release.empty() || new_count == 0) {
    w[old_release] = 100;
    return w;
  }
  w[new_release] = new_weight;
  w[old_release] = 100 - new_weight;
  return w;
}

int64_t next_generation(int64_t last, SystemTime now) {
  return std::max(last + 1, to_unix_ms(now) * 1000);
}

void merge_status(AppStatus& into, const AppStatus& other) {
  into.instances.insert(into.instances.end(), other.instances.begin(), other.instances.end());
  for (const auto& r : other.releases) {
    auto it = std::find_if(into.releases.begin(), into.releases.end(),
                           [&](const ReleaseStats& x) { return x.release == r.release; });
    if (it == into.releases.end()) {
      into.releases.push_back(r);
      continue;
    }
    it->requests += r.requests;
    it->status_1xx += r.status_1xx;
    it->status_2xx += r.status_2xx;
    it->status_3xx += r.status_3xx;
    it->status_4xx += r.status_4xx;
    it->status_5xx += r.status_5xx;
    it->upstream_errors += r.upstream_errors;
    it->slo_requests += r.slo_requests;
    it->slo_5xx += r.slo_5xx;
    it->latency_sum_ms += r.latency_sum_ms;
    it->latency_counts.resize(std::max(it->latency_counts.size(), r.latency_counts.size()));
    for (size_t i = 0; i < r.latency_counts.size(); ++i)
      it->latency_counts[i] += r.latency_counts[i];
    it->recent_latencies_ms.insert(it->recent_latencies_ms.end(), r.recent_latencies_ms.begin(),
                                   r.recent_latencies_ms.end());
    it->sample_seq += r.sample_seq;
    it->active_requests += r.active_requests;
  }
}

}  // namespace ferry
