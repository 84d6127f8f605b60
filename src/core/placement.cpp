#include "core/placement.h"

#include <algorithm>
#include <tuple>

namespace ferry {

namespace {

// Group index per agent: its spread_by label's value, groups in order of first appearance.
Result<std::vector<int>> spread_groups(const std::vector<PlacementAgent>& agents,
                                       const PlacementRules& rules, size_t* group_count) {
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
  *group_count = std::max<size_t>(values.size(), 1);
  return group;
}

// The agent (index) for the next slot: the least used group, then the least used agent in
// it, then the first listed; agents.size() when every allowed one is full.
size_t pick_agent(const std::vector<int>& group, const std::vector<int>& per_group,
                  const std::vector<int>& per_agent, const std::vector<bool>& allowed,
                  int max_per_agent) {
  size_t best = group.size();
  for (size_t i = 0; i < group.size(); ++i) {
    if (!allowed[i] || (max_per_agent > 0 && per_agent[i] >= max_per_agent)) continue;
    if (best == group.size() ||
        std::tie(per_group[static_cast<size_t>(group[i])], per_agent[i]) <
            std::tie(per_group[static_cast<size_t>(group[best])], per_agent[best]))
      best = i;
  }
  return best;
}

}  // namespace

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
  size_t groups = 1;
  auto group = spread_groups(agents, rules, &groups);
  if (!group.ok()) return group.status();
  if (total == 0) return std::vector<std::string>{};
  std::vector<int> per_group(groups, 0);
  std::vector<int> per_agent(agents.size(), 0);
  const std::vector<bool> allowed(agents.size(), true);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(total));
  for (int slot = 0; slot < total; ++slot) {
    // The capacity check above guarantees a free agent.
    const size_t best = pick_agent(*group, per_group, per_agent, allowed, rules.max_per_agent);
    ++per_group[static_cast<size_t>((*group)[best])];
    ++per_agent[best];
    out.push_back(agents[best].name);
  }
  return out;
}

Result<std::vector<std::string>> move_off(const std::vector<std::string>& placement,
                                          const std::vector<std::string>& gone,
                                          const std::vector<PlacementAgent>& agents,
                                          const PlacementRules& rules) {
  size_t groups = 1;
  auto group = spread_groups(agents, rules, &groups);
  if (!group.ok()) return group.status();
  auto is_gone = [&](const std::string& name) {
    return std::find(gone.begin(), gone.end(), name) != gone.end();
  };
  std::vector<bool> allowed(agents.size());
  std::vector<int> per_group(groups, 0), per_agent(agents.size(), 0);
  for (size_t i = 0; i < agents.size(); ++i) {
    allowed[i] = !is_gone(agents[i].name);
    const int n = static_cast<int>(std::count(placement.begin(), placement.end(), agents[i].name));
    if (!allowed[i]) continue;
    per_agent[i] = n;
    per_group[static_cast<size_t>((*group)[i])] += n;
  }
  std::vector<std::string> out = placement;
  for (auto& slot : out) {
    if (!is_gone(slot)) continue;
    const size_t best = pick_agent(*group, per_group, per_agent, allowed, rules.max_per_agent);
    if (best == agents.size())
      return invalid_argument(
          "no agent left to take the instances of " + slot +
          (rules.max_per_agent > 0
               ? " (the others run max_per_agent " + std::to_string(rules.max_per_agent) + " each)"
               : std::string()));
    ++per_group[static_cast<size_t>((*group)[best])];
    ++per_agent[best];
    slot = agents[best].name;
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
