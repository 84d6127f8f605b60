// worst_host (engine/host_verdict.h): one host much worse than the others is named; errors
// spread evenly, too few errors, or a single host are not blamed on a host.
#include "engine/host_verdict.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(HostVerdict, AHostMuchWorseThanTheOthersIsNamedWithItsNumbers) {
  auto w = worst_host({{"a", 200, 0}, {"b", 180, 1}, {"c", 40, 12}}, "v2");
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->agent, "c");
  EXPECT_EQ(w->text,
            "on agent c: 12 of 40 request(s) of v2 failed (30.0%); 1 of 380 (0.3%) on a, b");
}

TEST(HostVerdict, ErrorsSpreadEvenlyFewErrorsOrOneHostNameNoHost) {
  // Every host fails alike: the release is bad, not a host.
  EXPECT_FALSE(worst_host({{"a", 100, 20}, {"b", 100, 22}, {"c", 100, 25}}, "v2"));
  // Too few errors to blame anyone.
  EXPECT_FALSE(worst_host({{"a", 100, 0}, {"b", 10, 4}}, "v2"));
  // One host with requests: nothing to compare with.
  EXPECT_FALSE(worst_host({{"a", 100, 50}, {"b", 0, 0}}, "v2"));
  EXPECT_FALSE(worst_host({}, "v2"));
}

TEST(HostVerdict, HostsJsonListsEveryHost) {
  const Json j = hosts_json({{"a", 3, 1}, {"b", 0, 0}});
  EXPECT_EQ(j["a"]["requests"], 3);
  EXPECT_EQ(j["a"]["errors"], 1);
  EXPECT_TRUE(j.contains("b"));
}

}  // namespace
}  // namespace ferry
