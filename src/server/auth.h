// API authentication for the server: a bearer token (governance/tokens.h) looked up in
// the store and turned into a Principal that route handlers authorise against (role
// viewer < deployer < approver < admin, and the environments the token is limited to).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "governance/roles.h"
#include "store/store.h"

namespace ferry {

struct Principal {
  std::string token_id;
  std::string name;  // who, as shown in audit entries: "token:<name>"
  Role role = Role::kViewer;
  std::vector<std::string> envs;  // empty: all environments

  // Whether this principal may act with `need` on `env` ("" = not environment-specific).
  Status allow(Role need, const std::string& env = {}) const;
  std::string actor() const { return name; }
};

struct NewTokenRecord {
  TokenRecord record;
  std::string token;  // shown once, never stored
};

class Authenticator {
 public:
  explicit Authenticator(Store* store) : store_(store) {}
  // From an "Authorization: Bearer …" header value (or a raw token).
  Result<Principal> authenticate(const std::string& header_or_token, int64_t now_ms) const;
  // Makes a token; `ttl_ms` 0 never expires, a negative one is kInvalidArgument.
  Result<NewTokenRecord> create(const std::string& name, Role role, std::vector<std::string> envs,
                                const std::string& created_by, int64_t now_ms, int64_t ttl_ms = 0);

 private:
  Store* store_;
};

}  // namespace ferry
