// API tokens: "ferry_<id>_<secret>", where id is 12 lower-case hex characters (public:
// the store's key, safe to log) and secret is 32 characters of [0-9A-Za-z] (about 190
// bits). The store keeps only SHA-256 of the whole token (TokenRecord::hash); the
// token itself is shown once, when created. Errors never contain a token's secret.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "governance/roles.h"
#include "store/records.h"

namespace ferry {

inline constexpr std::string_view kTokenPrefix = "ferry_";
inline constexpr size_t kTokenIdChars = 12;
inline constexpr size_t kTokenSecretChars = 32;
inline constexpr size_t kTokenChars = kTokenPrefix.size() + kTokenIdChars + 1 + kTokenSecretChars;

struct ParsedToken {
  std::string id;
  std::string secret;
};

struct NewToken {
  std::string token;  // give to the user once; never store or log it
  std::string id;
  std::string hash;   // for TokenRecord::hash
};

// A new random token (RAND_bytes).
NewToken generate_token();
// Checks the format; the error says which part is wrong without echoing it.
Result<ParsedToken> parse_token(std::string_view token);
// SHA-256 of the whole token, hex.
std::string hash_token(std::string_view token);
// Whether `token` hashes to `stored_hash`, compared in constant time.
bool token_matches(std::string_view token, std::string_view stored_hash);

// Authenticates `presented` against the record looked up by its id: unauthenticated
// when malformed, for another id, not matching, revoked, or expired (expires_at_ms
// != 0 and now_ms >= it). Messages name the token id only.
Status check_token(const TokenRecord& record, std::string_view presented, int64_t now_ms);

// Authorizes an authenticated token: permission_denied, naming its role or scope and
// what was needed, when its role is below `need` or its scope excludes `env`
// (see scope_allows). A record with an unknown role is refused.
Status authorize(const TokenRecord& record, Role need, const std::string& env);

}  // namespace ferry
