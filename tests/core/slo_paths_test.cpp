// The paths an availability SLO leaves out (core/slo_paths.h): which lists are accepted,
// which requests they leave out, and that a client cannot hide another path behind one.
#include "core/slo_paths.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(SloPaths, ExactPathsAndPrefixesLeaveOutOnlyTheirRequests) {
  const std::vector<std::string> paths = {"/healthz", "/internal/*"};
  ASSERT_TRUE(check_slo_exclude_paths(paths).ok());
  EXPECT_TRUE(slo_path_excluded(paths, "/healthz"));
  EXPECT_TRUE(slo_path_excluded(paths, "/healthz?verbose=1"));
  EXPECT_TRUE(slo_path_excluded(paths, "/internal/metrics"));
  EXPECT_TRUE(slo_path_excluded(paths, "/internal/"));
  EXPECT_FALSE(slo_path_excluded(paths, "/healthz/deep"));  // exact means exact
  EXPECT_FALSE(slo_path_excluded(paths, "/healthzz"));
  EXPECT_FALSE(slo_path_excluded(paths, "/HEALTHZ"));
  EXPECT_FALSE(slo_path_excluded(paths, "/internal"));
  EXPECT_FALSE(slo_path_excluded(paths, "/api/healthz"));
  EXPECT_FALSE(slo_path_excluded(paths, "/"));
  EXPECT_FALSE(slo_path_excluded({}, "/healthz"));
}

TEST(SloPaths, ATargetThatCouldMeanAnotherPathIsNeverLeftOut) {
  const std::vector<std::string> paths = {"/healthz", "/internal/*"};
  for (const char* target :
       {"/internal/../api/orders", "/internal/./x", "/internal/..", "/healthz/..", "/%68ealthz",
        "/internal/%2e%2e/api", "http://example.com/healthz", "*", "", "healthz"})
    EXPECT_FALSE(slo_path_excluded(paths, target)) << target;
}

TEST(SloPaths, HostileListsAreRefusedNamingTheEntry) {
  struct Case {
    std::vector<std::string> paths;
    const char* says;
  };
  const std::vector<Case> cases = {
      {std::vector<std::string>(17, "/a"), "17 entries; at most 16"},
      {{"/ok", "/" + std::string(256, 'a')}, "exclude_paths[1]"},
      {{"/" + std::string(1 << 20, 'a')}, "1048577 characters long; at most 256"},
      {{"healthz"}, "does not start with '/'"},
      {{""}, "does not start with '/'"},
      {{"/health\x01z"}, "control character"},
      {{"/health\nX-Forged: 1"}, "control character"},
      {{"/health z"}, "control character or a space"},
      {{"/health\x7f"}, "control character"},
      {{"/a%2fb"}, "'%'"},
      {{"/a?b=1"}, "'?'"},
      {{"/a#b"}, "'#'"},
      {{"/a*/b"}, "before its end"},
      {{"/**"}, "before its end"},
      {{"/a/../b"}, "segment"},
      {{"/./b*"}, "segment"},
      {{"/*"}, "every request"},
      {{"/"}, "every request"},
      {{"/healthz", "/healthz"}, "listed twice"},
  };
  for (const auto& c : cases) {
    Status s = check_slo_exclude_paths(c.paths);
    ASSERT_FALSE(s.ok()) << c.says;
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
    // The error shows a bounded, printable form of the entry.
    EXPECT_LT(s.message().size(), 300u) << s.message();
    for (char ch : s.message()) EXPECT_GE(static_cast<unsigned char>(ch), 0x20) << s.message();
  }
  std::vector<std::string> sixteen;
  for (int i = 0; i < 16; ++i) sixteen.push_back("/p" + std::to_string(i));
  EXPECT_TRUE(check_slo_exclude_paths(sixteen).ok());
  EXPECT_TRUE(check_slo_exclude_paths({"/" + std::string(255, 'a')}).ok());
}

}  // namespace
}  // namespace ferry
