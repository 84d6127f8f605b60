#include "server/auth.h"

#include <cctype>

#include "governance/tokens.h"

namespace ferry {

Status Principal::allow(Role need, const std::string& env) const {
  if (!allows(role, need))
    return permission_denied(name + " has role " + std::string(role_name(role)) + "; this needs " +
                             std::string(role_name(need)));
  if (!scope_allows(envs, env))
    return permission_denied(name + " is not allowed in environment " + env);
  return Status::Ok();
}

Result<Principal> Authenticator::authenticate(const std::string& header_or_token,
                                              int64_t now_ms) const {
  std::string token = header_or_token;
  if (token.starts_with("Bearer ")) token = token.substr(7);
  if (token.empty()) return unauthenticated("an API token is required (Authorization: Bearer …)");
  auto parsed = parse_token(token);
  if (!parsed.ok()) return unauthenticated("malformed API token");
  auto rec = store_->get_token(parsed->id);
  // The store is away (a PostgreSQL restart): 503, not "invalid token"; the caller may
  // not be authenticated yet, so nothing about the database is said.
  if (rec.status().code() == Code::kUnavailable)
    return unavailable("the store is unavailable (restarting or unreachable); try again shortly");
  // One message for unknown, wrong, revoked and expired: nothing to probe with.
  if (!rec.ok() || !check_token(*rec, token, now_ms).ok())
    return unauthenticated("API token is not valid (unknown, revoked or expired)");
  auto role = parse_role(rec->role);
  if (!role.ok()) return unauthenticated("API token has an unknown role");
  return Principal{rec->id, "token:" + rec->name, *role, rec->envs};
}

Result<NewTokenRecord> Authenticator::create(const std::string& name, Role role,
                                             std::vector<std::string> envs,
                                             const std::string& created_by, int64_t now_ms,
                                             int64_t ttl_ms) {
  if (ttl_ms < 0) return invalid_argument("a token's ttl must be positive (0: no expiry)");
  if (name.empty() || name.size() > 64)
    return invalid_argument("token name must be 1-64 characters");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '@'))
      return invalid_argument("token name '" + name + "' may hold only letters, digits, - _ . @");
  const NewToken g = generate_token();
  NewTokenRecord t;
  t.token = g.token;
  t.record.id = g.id;
  t.record.hash = g.hash;
  t.record.name = name;
  t.record.role = std::string(role_name(role));
  t.record.envs = std::move(envs);
  t.record.created_by = created_by;
  t.record.created_at_ms = now_ms;
  t.record.expires_at_ms = ttl_ms > 0 ? now_ms + ttl_ms : 0;
  if (Status s = store_->create_token(t.record); !s.ok()) return s;
  return t;
}

}  // namespace ferry
