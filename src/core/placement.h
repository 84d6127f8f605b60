// Placement: an environment's `instances` is a total, spread over its agents. The result
// is a list of slots: slot i is the i-th instance of a release in the environment and
// names the agent that runs it. The slot number is in the instance's id, so ids are
// unique across hosts; a step that runs `k` instances of a release runs slots 0..k-1, so
// a partial count (a rolling batch, a canary) is spread too. Pure: no I/O, no clock.
// `ferry validate` (src/config/cross_check.cpp) and the engine (src/engine/runner.cpp)
// call the same function, so validate refuses exactly what the engine could not place.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ferry {

struct PlacementAgent {
  std::string name;
  std::map<std::string, std::string> labels;  // agents.NAME.labels (e.g. zone: eu-1a)
};

struct PlacementRules {
  int max_per_agent = 0;  // 0: no limit
  std::string spread_by;  // a label name; "": agents are spread over one by one
};

// Spreads `total` instances over `agents` (in their configured order). Agents are taken
// so that the groups of `spread_by` (e.g. zones) get as equal a number as possible, then
// the agents inside a group; ties go to the agent listed first. Deterministic: the same
// input gives the same slots.
// Errors (kInvalidArgument, the message says what to change): no agent; total above
// agents × max_per_agent; an agent without the spread_by label; total < 0.
Result<std::vector<std::string>> place_instances(int total,
                                                 const std::vector<PlacementAgent>& agents,
                                                 const PlacementRules& rules);

// The placement with every slot of an agent in `gone` moved to the others (on_agent_loss:
// continue), one slot at a time to the agent `place_instances` would pick given what each
// already runs; the other slots stay where they are, so no running instance moves.
// Errors (kInvalidArgument): no agent left, or the others are at max_per_agent.
Result<std::vector<std::string>> move_off(const std::vector<std::string>& placement,
                                          const std::vector<std::string>& gone,
                                          const std::vector<PlacementAgent>& agents,
                                          const PlacementRules& rules);

// The slots among the first `count` of `placement` that `agent` runs, in order.
std::vector<int> slots_on(const std::vector<std::string>& placement, int count,
                          const std::string& agent);

// "a: 2, b: 1" for messages and events (agents in order of their first slot).
std::string describe_placement(const std::vector<std::string>& placement);

}  // namespace ferry
