#include "common/mask.h"

#include <algorithm>
#include <mutex>

namespace ferry {

void Masker::add(std::string_view secret) {
  if (secret.size() < 4) return;
  std::unique_lock lock(mu_);
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.emplace_back(secret);
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

void Masker::remove(std::string_view secret) {
  std::unique_lock lock(mu_);
  secrets_.erase(std::remove(secrets_.begin(), secrets_.end(), secret), secrets_.end());
}

size_t Masker::size() const {
  std::shared_lock lock(mu_);
  return secrets_.size();
}

std::string Masker::mask(std::string_view text) const {
  std::shared_lock lock(mu_);
  std::string out(text);
  for (const auto& s : secrets_) {
    size_t pos = 0;
    while ((pos = out.find(s, pos)) != std::string::npos) {
      out.replace(pos, s.size(), "****");
      pos += 4;
    }
  }
  return out;
}

}  // namespace ferry
