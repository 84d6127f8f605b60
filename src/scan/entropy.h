// Cheap tests on a candidate secret: how random it looks and whether it is a placeholder.
#pragma once

#include <string_view>

namespace ferry::scan {

// Shannon entropy in bits per byte (0 for empty input, at most 8).
double shannon_entropy(std::string_view s);

// True for values that stand in for a secret in docs and templates: EXAMPLE, xxxx, changeme,
// ${VAR}, {{ var }}, <your-token>, ****, long runs of one character, and the like.
bool is_placeholder(std::string_view secret);

}  // namespace ferry::scan
