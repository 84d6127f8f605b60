// The ACME HTTP-01 answers an app's router serves on its plain port: the agent's ACME
// client publishes a token's key authorization while the CA validates it, and the router
// answers GET /.well-known/acme-challenge/TOKEN with it (404 for any other token).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/thread_annotations.h"

namespace ferry {

inline constexpr std::string_view kAcmeChallengePrefix = "/.well-known/acme-challenge/";

// Thread-safe: the ACME thread writes, the router's io threads read (one short lock).
class AcmeChallengeBook {
 public:
  // Adds or replaces a token's answer; false (nothing kept) for a token that is not 16-256
  // base64url characters, or when kMaxTokens are already published.
  bool publish(const std::string& token, const std::string& key_authorization);
  void withdraw(const std::string& token);
  // The answer for a request target ("/.well-known/acme-challenge/TOKEN", no query), or
  // none: not a challenge path, or an unknown token.
  std::optional<std::string> answer(std::string_view target) const;
  size_t size() const;

  static constexpr size_t kMaxTokens = 256;

 private:
  mutable Mutex mu_;
  std::map<std::string, std::string, std::less<>> answers_ FERRY_GUARDED_BY(mu_);
};

}  // namespace ferry
