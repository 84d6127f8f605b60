#include "engine/placing.h"

#include <algorithm>

namespace ferry {

void to_json(Json& j, const DeploymentPlacement& p) {
  j = Json{{"new", p.new_release}, {"old", p.old_release}};
}

void from_json(const Json& j, DeploymentPlacement& p) {
  p.new_release = j.value("new", std::vector<std::string>{});
  p.old_release = j.value("old", std::vector<std::string>{});
}

std::vector<PlacementAgent> placement_agents(const Config& config,
                                             const std::vector<AgentClient*>& agents) {
  std::vector<PlacementAgent> out;
  for (AgentClient* a : agents) {
    PlacementAgent p{a->name(), {}};
    if (const AgentSpec* spec = config.agent(p.name)) p.labels = spec->labels;
    out.push_back(std::move(p));
  }
  return out;
}

PlacementRules placement_rules(const EnvironmentSpec* env) {
  if (!env) return {};
  return {.max_per_agent = env->max_per_agent, .spread_by = env->spread_by};
}

Result<std::vector<std::string>> place_on(const Config& config, const EnvironmentSpec* env,
                                          const std::vector<AgentClient*>& agents, int total) {
  return place_instances(total, placement_agents(config, agents), placement_rules(env));
}

Result<std::optional<DeploymentPlacement>> stored_placement(Store& store,
                                                            const std::string& deployment_id) {
  std::optional<DeploymentPlacement> out;
  int64_t after = 0;
  // Bounded: a deployment's events are paged through at most 50 times.
  for (int page = 0; page < 50; ++page) {
    auto events = store.list_events(deployment_id, after, 1000);
    if (!events.ok()) return events.status();
    for (const auto& e : *events) {
      after = e.seq;
      if (e.type == EventType::kPlaced && e.data.contains("placement"))
        out = e.data["placement"].get<DeploymentPlacement>();
    }
    if (events->size() < 1000) break;
  }
  return out;
}

Result<std::vector<std::string>> stable_placement(Store& store, const Config& config,
                                                  const std::string& app, const std::string& env,
                                                  const std::vector<AgentClient*>& agents,
                                                  int total) {
  auto envs = store.list_env_releases(app);
  if (!envs.ok()) return envs.status();
  for (const auto& e : *envs) {
    if (e.env != env || e.deployment_id.empty()) continue;
    auto stored = stored_placement(store, e.deployment_id);
    if (!stored.ok()) return stored.status();
    if (!*stored || static_cast<int>((*stored)->new_release.size()) != total) break;
    const auto& slots = (*stored)->new_release;
    const bool all_here = std::all_of(slots.begin(), slots.end(), [&](const std::string& name) {
      return std::any_of(agents.begin(), agents.end(),
                         [&](AgentClient* a) { return a->name() == name; });
    });
    if (all_here) return slots;
    break;
  }
  return place_on(config, config.environment(env), agents, total);
}

}  // namespace ferry
