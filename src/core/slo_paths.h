// The paths an availability SLO leaves out (`apps.NAME.slo.availability.exclude_paths`,
// docs/slo.md): checked the same way by `ferry validate`, the agent's API and the router.
//
// An entry is an exact path ("/healthz") or a prefix ending in '*' ("/internal/*"). A
// request is left out when the path of its target (before any '?') equals an exact entry or
// starts with a prefix entry's text before the '*'. A target that is not a plain path (not
// starting with '/', a '%' escape, a "." or ".." segment) is never left out: a client cannot
// hide a request to another path behind an excluded one ("/healthz/../api").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry {

inline constexpr size_t kMaxSloExcludePaths = 16;
inline constexpr size_t kMaxSloExcludePathLength = 256;

// Ok, or an error naming the entry (its index) and what is wrong with it: more than
// kMaxSloExcludePaths entries, one longer than kMaxSloExcludePathLength, not starting with
// '/', with a control character, a space, '%', '?' or '#', a '*' anywhere but at the end,
// a "." or ".." segment, "/*" (every request), or twice the same.
Status check_slo_exclude_paths(const std::vector<std::string>& paths);

// Whether a request with this target is left out (see above). `paths` passed the check.
bool slo_path_excluded(const std::vector<std::string>& paths, std::string_view target);

}  // namespace ferry
