#include "router/tls_challenges.h"

#include <algorithm>
#include <cctype>

namespace ferry {

namespace {

bool challenge_token_ok(std::string_view t) {
  return t.size() >= 16 && t.size() <= 256 && std::all_of(t.begin(), t.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         });
}

}  // namespace

bool AcmeChallengeBook::publish(const std::string& token, const std::string& key_authorization) {
  if (!challenge_token_ok(token) || key_authorization.size() > 1024) return false;
  MutexLock lock(mu_);
  if (answers_.size() >= kMaxTokens && !answers_.count(token)) return false;
  answers_[token] = key_authorization;
  return true;
}

void AcmeChallengeBook::withdraw(const std::string& token) {
  MutexLock lock(mu_);
  answers_.erase(token);
}

std::optional<std::string> AcmeChallengeBook::answer(std::string_view target) const {
  if (target.substr(0, kAcmeChallengePrefix.size()) != kAcmeChallengePrefix) return std::nullopt;
  std::string_view token = target.substr(kAcmeChallengePrefix.size());
  if (!challenge_token_ok(token)) return std::nullopt;
  MutexLock lock(mu_);
  auto it = answers_.find(token);
  if (it == answers_.end()) return std::nullopt;
  return it->second;
}

size_t AcmeChallengeBook::size() const {
  MutexLock lock(mu_);
  return answers_.size();
}

}  // namespace ferry
