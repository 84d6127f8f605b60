#include "common/mask.h"

#include <algorithm>
#include <cctype>
#include <mutex>

namespace ferry {

namespace {

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

void Masker::add(std::string_view secret) {
  if (secret.empty()) return;
  std::unique_lock lock(mu_);
  if (secret.size() < 4) {
    if (std::find(short_secrets_.begin(), short_secrets_.end(), secret) == short_secrets_.end())
      short_secrets_.emplace_back(secret);
    std::stable_sort(short_secrets_.begin(), short_secrets_.end(),
                     [](const auto& a, const auto& b) { return a.size() > b.size(); });
    return;
  }
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.emplace_back(secret);
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

void Masker::remove(std::string_view secret) {
  std::unique_lock lock(mu_);
  secrets_.erase(std::remove(secrets_.begin(), secrets_.end(), secret), secrets_.end());
  short_secrets_.erase(std::remove(short_secrets_.begin(), short_secrets_.end(), secret),
                       short_secrets_.end());
}

size_t Masker::size() const {
  std::shared_lock lock(mu_);
  return secrets_.size() + short_secrets_.size();
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
  for (const auto& s : short_secrets_) {
    size_t pos = 0;
    while ((pos = out.find(s, pos)) != std::string::npos) {
      const bool alone = (pos == 0 || !word_char(out[pos - 1])) &&
                         (pos + s.size() >= out.size() || !word_char(out[pos + s.size()]));
      if (!alone) {
        ++pos;
        continue;
      }
      out.replace(pos, s.size(), "****");
      pos += 4;
    }
  }
  return out;
}

}  // namespace ferry
