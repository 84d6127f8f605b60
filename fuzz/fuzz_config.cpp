// Fuzzes the ferry.yaml parser: any input must give a Config or errors that each carry a
// message, never a crash, a hang or an unbounded error list.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ferry::ConfigCheck r = ferry::check_config(text, "fuzz.yaml");
  if (r.config.has_value() != r.errors.empty()) __builtin_trap();
  if (r.errors.size() > ferry::kMaxErrors + 1) __builtin_trap();
  for (const auto& e : r.errors)
    if (e.message.empty() || e.line < 0 || e.column < 0) __builtin_trap();
  return 0;
}
