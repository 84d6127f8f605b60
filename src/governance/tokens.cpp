#include "governance/tokens.h"

#include <fmt/format.h>

#include "common/crypto.h"

namespace ferry {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_base62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

Status bad_format(std::string_view what) {
  return unauthenticated(fmt::format("not a ferry token ({}); expected ferry_<12 hex>_<32 letters or digits>", what));
}

}  // namespace

NewToken generate_token() {
  NewToken t;
  t.id = to_hex(random_bytes(kTokenIdChars / 2));
  std::string secret;
  // Rejection sampling: bytes of 248 and above would favour the first characters.
  while (secret.size() < kTokenSecretChars) {
    for (unsigned char b : random_bytes(kTokenSecretChars)) {
      if (b >= 248 || secret.size() == kTokenSecretChars) continue;
      secret.push_back(kAlphabet[b % kAlphabet.size()]);
    }
  }
  t.token = fmt::format("{}{}_{}", kTokenPrefix, t.id, secret);
  t.hash = hash_token(t.token);
  return t;
}

Result<ParsedToken> parse_token(std::string_view token) {
  if (token.size() != kTokenChars) return bad_format(fmt::format("{} characters instead of {}", token.size(), kTokenChars));
  if (token.substr(0, kTokenPrefix.size()) != kTokenPrefix) return bad_format("no ferry_ prefix");
  const std::string_view id = token.substr(kTokenPrefix.size(), kTokenIdChars);
  for (char c : id)
    if (!is_lower_hex(c)) return bad_format("the id is not 12 lower-case hex characters");
  if (token[kTokenPrefix.size() + kTokenIdChars] != '_') return bad_format("no _ after the id");
  const std::string_view secret = token.substr(kTokenPrefix.size() + kTokenIdChars + 1);
  for (char c : secret)
    if (!is_base62(c)) return bad_format("the secret holds a character other than a letter or digit");
  return ParsedToken{std::string(id), std::string(secret)};
}

std::string hash_token(std::string_view token) { return sha256_hex(token); }

bool token_matches(std::string_view token, std::string_view stored_hash) {
  return constant_time_equal(hash_token(token), stored_hash);
}

Status check_token(const TokenRecord& record, std::string_view presented, int64_t now_ms) {
  auto parsed = parse_token(presented);
  if (!parsed.ok()) return parsed.status();
  if (parsed->id != record.id || !token_matches(presented, record.hash))
    return unauthenticated(fmt::format("token {} is not valid", parsed->id));
  if (record.revoked) return unauthenticated(fmt::format("token {} ({}) was revoked", record.id, record.name));
  if (record.expires_at_ms != 0 && now_ms >= record.expires_at_ms)
    return unauthenticated(fmt::format("token {} ({}) has expired", record.id, record.name));
  return Status::Ok();
}

Status authorize(const TokenRecord& record, Role need, const std::string& env) {
  auto role = parse_role(record.role);
  if (!role.ok())
    return permission_denied(fmt::format("token {} has an unknown role \"{}\"", record.id, record.role.substr(0, 40)));
  if (!allows(*role, need))
    return permission_denied(fmt::format("token {} ({}) has role {}; this needs {} or above", record.id,
                                         record.name, role_name(*role), role_name(need)));
  if (!scope_allows(record.envs, env)) {
    std::string scope;
    for (const auto& e : record.envs) scope += (scope.empty() ? "" : ", ") + e;
    return permission_denied(fmt::format("token {} ({}) is limited to environments [{}], not {}", record.id,
                                         record.name, scope, env));
  }
  return Status::Ok();
}

}  // namespace ferry
