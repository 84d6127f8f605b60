// ferry.yaml settings of issue 14: keep_previous and analysis.sequential, validated so
// `ferry validate` never accepts what the server cannot carry out.
#include "config_test_util.h"

namespace ferry {
namespace {

using testing::app_with;

TEST(RollbackSettings, KeepPreviousIsADurationOnTheApp) {
  auto cfg = parse_config(app_with("    keep_previous: 30m\n    strategy: blue_green\n"), "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->app("web")->keep_previous_ms, 30 * 60'000);
  auto off = parse_config(testing::kMinimal, "f.yaml");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->app("web")->keep_previous_ms, 0);
}

TEST(RollbackSettings, KeepPreviousRejectsBadValuesAndRolling) {
  EXPECT_CONFIG_ERROR(app_with("    keep_previous: 2d\n    strategy: immediate\n"),
                      "apps.web.keep_previous", "", 11);
  EXPECT_CONFIG_ERROR(app_with("    keep_previous: soon\n    strategy: immediate\n"),
                      "apps.web.keep_previous", "", 11);
  // The default strategy is rolling: nothing would be left to keep.
  EXPECT_CONFIG_ERROR(app_with("    keep_previous: 10m\n"), "apps.web.keep_previous", "rolling",
                      11);
}

TEST(RollbackSettings, SequentialTestSettings) {
  auto cfg = parse_config(
      app_with("    analysis:\n      sequential: {interval: 50ms, alpha: 0.0001, ratio: 5}\n"),
      "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const auto& s = cfg->app("web")->analysis.sequential;
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.interval_ms, 50);
  EXPECT_DOUBLE_EQ(s.alpha, 0.0001);
  EXPECT_DOUBLE_EQ(s.ratio, 5);
  auto off = parse_config(app_with("    analysis:\n      sequential: false\n"), "f.yaml");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->app("web")->analysis.sequential.enabled);
  auto def = parse_config(testing::kMinimal, "f.yaml");
  EXPECT_TRUE(def->app("web")->analysis.sequential.enabled);
  EXPECT_EQ(def->app("web")->analysis.sequential.interval_ms, 100);
}

TEST(RollbackSettings, SequentialTestRejectsSlowLooksAndNonsense) {
  // Fewer than ten looks a second is not continuous.
  EXPECT_CONFIG_ERROR(app_with("    analysis:\n      sequential: {interval: 1s}\n"),
                      "apps.web.analysis.sequential.interval", "", 12);
  EXPECT_CONFIG_ERROR(app_with("    analysis:\n      sequential: {alpha: 0.5}\n"),
                      "apps.web.analysis.sequential.alpha", "", 12);
  EXPECT_CONFIG_ERROR(app_with("    analysis:\n      sequential: {ratio: 1}\n"),
                      "apps.web.analysis.sequential.ratio", "", 12);
  EXPECT_CONFIG_ERROR(app_with("    analysis:\n      sequential: {alpah: 0.01}\n"),
                      "apps.web.analysis.sequential.alpah", "did you mean", 12);
}

}  // namespace
}  // namespace ferry
