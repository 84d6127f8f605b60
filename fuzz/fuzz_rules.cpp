// Fuzzes the gitleaks-format rule-file parser: any input must give a RuleSet or an error
// Status, never a crash, a hang or an exception; a parsed rule's regexes must be usable.
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "scan/rule_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rules = ferry::scan::parse_rules(text, "fuzz.toml");
  if (!rules.ok()) {
    // Errors always say where.
    if (rules.status().message().rfind("fuzz.toml", 0) != 0) __builtin_trap();
    return 0;
  }
  for (const ferry::scan::Rule& r : rules->rules) {
    if (r.id.empty()) __builtin_trap();
    if (r.re) {
      re2::StringPiece m;
      (void)re2::RE2::PartialMatch(re2::StringPiece(text.data(), std::min<size_t>(size, 256)),
                                   *r.re);
    }
  }
  return 0;
}
