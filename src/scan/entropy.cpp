#include "scan/entropy.h"

#include <array>
#include <cmath>
#include <string>

namespace ferry::scan {

double shannon_entropy(std::string_view s) {
  if (s.empty()) return 0;
  std::array<size_t, 256> counts{};
  for (unsigned char c : s) ++counts[c];
  double h = 0;
  const double n = static_cast<double>(s.size());
  for (size_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

bool is_placeholder(std::string_view secret) {
  std::string s(secret);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::string_view kMarkers[] = {
      "example", "xxxx",      "changeme",   "change_me", "change-me", "placeholder",
      "your_",   "your-",     "yourtoken",  "redacted",  "****",      "${",
      "{{",      "$(",        "%s",         "<your",     "<token",    "<secret",
      "<api",    "<password", "replace_me", "replaceme", "insert_",   "...."};
  for (std::string_view m : kMarkers) {
    if (s.find(m) != std::string::npos) return true;
  }
  // A value in angle brackets, <like-this>.
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') return true;
  // Eight or more of one character in a row making up a third of the value or more:
  // 00000000, aaaaaaaa, abcd000000000000. A short run inside a long value is part of the
  // secret (Firefox's encrypted passwords start with a key id of zero bytes, "AAAA...").
  size_t run = 1;
  for (size_t i = 1; i < s.size(); ++i) {
    run = s[i] == s[i - 1] ? run + 1 : 1;
    if (run >= 8 && run * 3 >= s.size()) return true;
  }
  return false;
}

}  // namespace ferry::scan
