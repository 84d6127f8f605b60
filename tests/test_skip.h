// A test that needs a real server or tool (Prometheus, promtool, Chromium) that is not
// installed fails, so CI cannot pass by skipping it; a developer without the tool sets
// FERRY_ALLOW_SKIP=1 to skip instead. scripts/install-deps.sh --test installs them all.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace ferry::testing {

inline bool skips_allowed() {
  const char* v = std::getenv("FERRY_ALLOW_SKIP");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace ferry::testing

// Skips (FERRY_ALLOW_SKIP=1) or fails the current test with `why`.
#define FERRY_SKIP_OR_FAIL(why)                                                        \
  do {                                                                                 \
    if (::ferry::testing::skips_allowed()) GTEST_SKIP() << why;                        \
    FAIL() << why << " (set FERRY_ALLOW_SKIP=1 to skip instead of failing)";           \
  } while (0)
