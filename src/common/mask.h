// Masker: replaces every registered secret value with "****" in text that leaves the
// process (logs, events, errors, hook output). Thread-safe.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

class Masker {
 public:
  // Every non-empty value is masked. Values of 4 bytes and more wherever they appear;
  // shorter ones where they stand alone (not next to a letter or digit), so that "ab1"
  // is masked in "password=ab1" without mangling every word that contains it.
  void add(std::string_view secret);
  void remove(std::string_view secret);
  std::string mask(std::string_view text) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  std::vector<std::string> secrets_;  // longest first, so a secret containing another wins
  std::vector<std::string> short_secrets_;  // 1-3 bytes, masked as whole tokens
};

}  // namespace ferry
