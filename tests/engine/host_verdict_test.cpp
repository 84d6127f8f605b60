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

TEST(HostVerdict, AHostFailsOnItsOwnOnlyAboveTheThresholdAndMuchWorseThanTheOthers) {
  // Diluted: 25 errors in 2050 requests is 1.2% in total, under 5%, but host c fails 50%.
  auto f = failing_host({{"a", 1000, 0}, {"b", 1000, 0}, {"c", 50, 25}}, "v2", 0.05);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->agent, "c");
  EXPECT_DOUBLE_EQ(f->rate, 0.5);
  // The worst host but under the threshold: nothing fails (3% against 0.1%).
  EXPECT_FALSE(failing_host({{"a", 1000, 1}, {"b", 1000, 1}, {"c", 300, 9}}, "v2", 0.05));
  EXPECT_TRUE(worst_host({{"a", 1000, 1}, {"b", 1000, 1}, {"c", 300, 9}}, "v2"));
  // Above the threshold everywhere alike: the release's fault, the sum judges it.
  EXPECT_FALSE(failing_host({{"a", 100, 20}, {"b", 100, 22}, {"c", 100, 25}}, "v2", 0.05));
  // Above the threshold but only 4 errors: too little to blame a host.
  EXPECT_FALSE(failing_host({{"a", 1000, 0}, {"b", 8, 4}}, "v2", 0.05));
}

TEST(HostVerdict, HostsJsonListsEveryHost) {
  const Json j = hosts_json({{"a", 3, 1}, {"b", 0, 0}});
  EXPECT_EQ(j["a"]["requests"], 3);
  EXPECT_EQ(j["a"]["errors"], 1);
  EXPECT_TRUE(j.contains("b"));
}

}  // namespace
}  // namespace ferry
