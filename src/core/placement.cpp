#include "core/placement.h"

#include <algorithm>
#include <tuple>

namespace ferry {

Result<std::vector<std::string>> place_instances(int total,
                                                 const std::vector<PlacementAgent>& agents,
                                                 const PlacementRules& rules) {
  if (total < 0) return invalid_argument("instances " + std::to_string(total) + " is negative");
  if (agents.empty() && total > 0)
    return invalid_argument("no agent to place " + std::to_string(total) + " instance(s) on");
  if (rules.max_per_agent < 0)
    return invalid_argument("max_per_agent " + std::to_string(rules.max_per_agent) +
                            " is negative");
  const int n = static_cast<int>(agents.size());
  if (rules.max_per_agent > 0 && total > n * rules.max_per_agent)
    return invalid_argument(std::to_string(total) + " instance(s) do not fit on " +
                            std::to_string(n) + " agent(s) with max_per_agent " +
                            std::to_string(rules.max_per_agent) + " (at most " +
                            std::to_string(n * rules.max_per_agent) +
                            "): lower instances, raise max_per_agent or add agents");
  // Group index per agent: its spread_by label's value, groups in order of first appearance.
  std::vector<int> group(agents.size(), 0);
  std::vector<std::string> values;
  if (!rules.spread_by.empty()) {
    for (size_t i = 0; i < agents.size(); ++i) {
      auto it = agents[i].labels.find(rules.spread_by);
      if (it == agents[i].labels.end())
        return invalid_argument("agent \"" + agents[i].name + "\" has no label \"" +
                                rules.spread_by + "\" to spread by (spread_by: " + rules.spread_by +
                                "); give every agent of the environment one");
      auto v = std::find(values.begin(), values.end(), it->second);
      group[i] = static_cast<int>(v - values.begin());
      if (v == values.end()) values.push_back(it->second);
    }
  }
  if (total == 0) return std::vector<std::string>{};
  std::vector<int> per_group(std::max<size_t>(values.size(), 1), 0);
  std::vector<int> per_agent(agents.size(), 0);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(total));
  for (int slot = 0; slot < total; ++slot) {
    size_t best = agents.size();
    for (size_t i = 0; i < agents.size(); ++i) {
      if (rules.max_per_agent > 0 && per_agent[i] >= rules.max_per_agent) continue;
      if (best == agents.size() || std::tie(per_group[group[i]], per_agent[i]) <
                                       std::tie(per_group[group[best]], per_agent[best]))
        best = i;
    }
    // The capacity check above guarantees a free agent.
    ++per_group[group[best]];
    ++per_agent[best];
    out.push_back(agents[best].name);
  }
  return out;
}

std::vector<int> slots_on(const std::vector<std::string>& placement, int count,
                          const std::string& agent) {
  std::vector<int> out;
  const int n = std::min(count, static_cast<int>(placement.size()));
  for (int i = 0; i < n; ++i)
    if (placement[static_cast<size_t>(i)] == agent) out.push_back(i);
  return out;
}

std::string describe_placement(const std::vector<std::string>& placement) {
  std::vector<std::pair<std::string, int>> counts;
  for (const auto& a : placement) {
    auto it =
        std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == a; });
    if (it == counts.end())
      counts.emplace_back(a, 1);
    else
      ++it->second;
  }
  std::string out;
  for (const auto& [a, c] : counts) out += (out.empty() ? "" : ", ") + a + ": " + std::to_string(c);
  return out;
}

}  // namespace ferry
