// Roles: what a token may do. Each role includes the ones below it:
//   viewer   read state, deployments, audit log
//   deployer + create releases, request deployments, promote, abort, roll back
//   approver + approve deployments (never one's own: see approvals.h)
//   admin    + manage tokens, secrets and overrides
// A token may also be limited to some environments (TokenRecord::envs).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry {

enum class Role { kViewer = 0, kDeployer = 1, kApprover = 2, kAdmin = 3 };

// "viewer", "deployer", "approver" or "admin" (exactly, lower case); the error lists them.
Result<Role> parse_role(std::string_view name);
std::string_view role_name(Role role);

// Whether a holder of `have` may do what needs `need`.
bool allows(Role have, Role need);

// Whether a token limited to `envs` may act on `env`. An empty list means every
// environment; an empty `env` (an action not tied to an environment) is always allowed.
bool scope_allows(const std::vector<std::string>& envs, const std::string& env);

}  // namespace ferry
