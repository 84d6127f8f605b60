#include "server/auth.h"

#include <algorithm>

#include "common/crypto.h"

namespace ferry {

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kViewer: return "viewer";
    case Role::kDeployer: return "deployer";
    case Role::kApprover: return "approver";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

Result<Role> parse_role(std::string_view s) {
  for (Role r : {Role::kViewer, Role::kDeployer, Role::kApprover, Role::kAdmin})
    if (role_name(r) == s) return r;
  return invalid_argument("role '" + std::string(s.substr(0, 32)) +
                          "' is not one of viewer, deployer, approver, admin");
}

Status Principal::allow(Role need, const std::string& env) const {
  if (role < need)
    return permission_denied(name + " has role " + std::string(role_name(role)) + "; this needs " +
                             std::string(role_name(need)));
  if (!env.empty() && !envs.empty() && std::find(envs.begin(), envs.end(), env) == envs.end())
    return permission_denied(name + " is not allowed in environment " + env);
  return Status::Ok();
}

Result<Principal> Authenticator::authenticate(const std::string& header_or_token,
                                              int64_t now_ms) const {
  std::string token = header_or_token;
  if (token.starts_with("Bearer ")) token = token.substr(7);
  if (token.empty()) return unauthenticated("an API token is required (Authorization: Bearer …)");
  if (token.size() > 200 || !token.starts_with("ferry_"))
    return unauthenticated("malformed API token");
  const size_t sep = token.find('_', 6);
  if (sep == std::string::npos) return unauthenticated("malformed API token");
  const std::string id = token.substr(6, sep - 6);
  auto rec = store_->get_token(id);
  // One message for unknown, wrong, revoked and expired: nothing to probe with.
  if (!rec.ok() || rec->revoked || !constant_time_equal(rec->hash, sha256_hex(token)) ||
      (rec->expires_at_ms != 0 && rec->expires_at_ms <= now_ms))
    return unauthenticated("API token is not valid (unknown, revoked or expired)");
  auto role = parse_role(rec->role);
  if (!role.ok()) return unauthenticated("API token has an unknown role");
  return Principal{rec->id, "token:" + rec->name, *role, rec->envs};
}

Result<NewToken> Authenticator::create(const std::string& name, Role role,
                                       std::vector<std::string> envs,
                                       const std::string& created_by, int64_t now_ms,
                                       int64_t ttl_ms) {
  if (name.empty() || name.size() > 64)
    return invalid_argument("token name must be 1-64 characters");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '@'))
      return invalid_argument("token name '" + name + "' may hold only letters, digits, - _ . @");
  NewToken t;
  t.record.id = to_hex(random_bytes(6));
  t.token = "ferry_" + t.record.id + "_" + to_hex(random_bytes(16));
  t.record.name = name;
  t.record.hash = sha256_hex(t.token);
  t.record.role = std::string(role_name(role));
  t.record.envs = std::move(envs);
  t.record.created_by = created_by;
  t.record.created_at_ms = now_ms;
  t.record.expires_at_ms = ttl_ms > 0 ? now_ms + ttl_ms : 0;
  if (Status s = store_->create_token(t.record); !s.ok()) return s;
  return t;
}

}  // namespace ferry
