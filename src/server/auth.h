// API authentication and authorisation: bearer tokens "ferry_<id>_<secret>" whose
// SHA-256 is kept in the store (never the token), roles viewer < deployer < approver <
// admin, and an optional list of environments a token is limited to.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace ferry {

enum class Role { kViewer = 0, kDeployer = 1, kApprover = 2, kAdmin = 3 };
std::string_view role_name(Role r);
Result<Role> parse_role(std::string_view s);

struct Principal {
  std::string token_id;
  std::string name;  // who, as shown in audit entries: "token:<name>"
  Role role = Role::kViewer;
  std::vector<std::string> envs;  // empty: all environments

  // Whether this principal may act with `need` on `env` ("" = not environment-specific).
  Status allow(Role need, const std::string& env = {}) const;
  std::string actor() const { return name; }
};

struct NewToken {
  TokenRecord record;
  std::string token;  // shown once, never stored
};

class Authenticator {
 public:
  explicit Authenticator(Store* store) : store_(store) {}
  // From an "Authorization: Bearer …" header value (or a raw token).
  Result<Principal> authenticate(const std::string& header_or_token, int64_t now_ms) const;
  // Makes a token; `ttl_ms` 0 never expires.
  Result<NewToken> create(const std::string& name, Role role, std::vector<std::string> envs,
                          const std::string& created_by, int64_t now_ms, int64_t ttl_ms = 0);

 private:
  Store* store_;
};

}  // namespace ferry
