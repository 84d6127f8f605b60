// Where a deployment's instances run: the placement (core/placement.h) of the new release
// and of the stable one, computed when the deployment starts and stored with it (its
// `placed` event), so a resume after a server restart keeps every instance id on the
// same host even when ferry.yaml changed in between.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/agent_api.h"
#include "core/placement.h"
#include "core/spec.h"
#include "store/store.h"

namespace ferry {

struct DeploymentPlacement {
  std::vector<std::string> new_release;  // slot → agent name
  std::vector<std::string> old_release;  // the stable release's, "" slots none
};
void to_json(Json& j, const DeploymentPlacement& p);
void from_json(const Json& j, DeploymentPlacement& p);

// The agents with their labels from the configuration (agents not in config->agents, such
// as "local", have none), and the environment's rules (none when env is null).
std::vector<PlacementAgent> placement_agents(const Config& config,
                                             const std::vector<AgentClient*>& agents);
PlacementRules placement_rules(const EnvironmentSpec* env);

// `total` instances over `agents` by the environment's rules and the agents' labels
// (agents not in config->agents, such as "local", have none).
Result<std::vector<std::string>> place_on(const Config& config, const EnvironmentSpec* env,
                                          const std::vector<AgentClient*>& agents, int total);

// The placement stored with a deployment (its last `placed` event); nullopt when it has
// none (it has not started, or predates placement). kUnavailable when the store is away.
Result<std::optional<DeploymentPlacement>> stored_placement(Store& store,
                                                            const std::string& deployment_id);

// How the stable release of app in env runs now: the placement of the deployment that made
// it stable, when every agent it names is still one of `agents` and it has `total` slots;
// else a fresh placement of `total`.
Result<std::vector<std::string>> stable_placement(Store& store, const Config& config,
                                                  const std::string& app, const std::string& env,
                                                  const std::vector<AgentClient*>& agents,
                                                  int total);

}  // namespace ferry
