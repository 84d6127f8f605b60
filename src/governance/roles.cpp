#include "governance/roles.h"

#include <fmt/format.h>

#include <algorithm>

namespace ferry {
namespace {

constexpr std::string_view kNames[] = {"viewer", "deployer", "approver", "admin"};

}  // namespace

Result<Role> parse_role(std::string_view name) {
  for (size_t i = 0; i < std::size(kNames); ++i)
    if (name == kNames[i]) return static_cast<Role>(i);
  std::string shown(name.substr(0, 40));
  for (char& c : shown)
    if (c < 0x20 || c > 0x7e) c = '?';
  return invalid_argument(fmt::format("unknown role \"{}\"; use viewer, deployer, approver or admin", shown));
}

std::string_view role_name(Role role) {
  const auto i = static_cast<size_t>(role);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

bool allows(Role have, Role need) { return static_cast<int>(have) >= static_cast<int>(need); }

bool scope_allows(const std::vector<std::string>& envs, const std::string& env) {
  return envs.empty() || env.empty() || std::find(envs.begin(), envs.end(), env) != envs.end();
}

}  // namespace ferry
