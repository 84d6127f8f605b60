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
  // Values shorter than 4 bytes are not registered: masking them would mangle ordinary text.
  void add(std::string_view secret);
  void remove(std::string_view secret);
  std::string mask(std::string_view text) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  std::vector<std::string> secrets_;  // longest first, so a secret containing another wins
};

}  // namespace ferry
