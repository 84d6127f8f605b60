// apps.NAME.slo and environments.NAME.slo_gate (issue 23): what the router's counters can
// carry out is accepted; everything else is refused naming the field and the value.
#include "config_test_util.h"

namespace ferry {
namespace {

using testing::app_with;

std::string gated(const std::string& gate) {
  return std::string(R"(version: 1
environments:
  staging: {}
  production:
    requires: [staging]
    slo_gate: )") +
         gate + R"(
apps:
  web:
    port: 8080
    run:
      command: ["./server"]
    slo: {availability: 99.9%}
)";
}

TEST(SloConfig, ObjectivesWindowAndOverride) {
  auto cfg = parse_config(app_with(R"(    slo:
      availability: {target: 99.9%}
      latency: {threshold: 250ms, target: 99%}
      window: 30d
    environments:
      staging:
        slo: {availability: 95%, window: 7d}
)"),
                          "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const AppSpec* web = cfg->app("web");
  ASSERT_TRUE(web->slo.has_value());
  EXPECT_DOUBLE_EQ(*web->slo->availability_target, 0.999);
  EXPECT_DOUBLE_EQ(*web->slo->latency_target, 0.99);
  EXPECT_EQ(web->slo->latency_threshold_ms, 250);
  EXPECT_EQ(web->slo->window_ms, 30LL * 86'400'000);
  // The environment's slo replaces the app's.
  AppSpec staging = cfg->app_for_env(*web, "staging");
  ASSERT_TRUE(staging.slo.has_value());
  EXPECT_DOUBLE_EQ(*staging.slo->availability_target, 0.95);
  EXPECT_FALSE(staging.slo->latency_target.has_value());
  EXPECT_EQ(staging.slo->window_ms, 7LL * 86'400'000);
  EXPECT_DOUBLE_EQ(*cfg->app_for_env(*web, "production").slo->availability_target, 0.999);
  // No slo: none kept.
  auto plain = parse_config(testing::kMinimal, "f.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->app("web")->slo.has_value());
}

TEST(SloConfig, GateSettings) {
  auto cfg = parse_config(gated("{min_budget: 10%, max_burn: 2x, max_budget_spend: 2%}"), "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const SloGateSpec& g = cfg->environment("production")->slo_gate;
  EXPECT_TRUE(g.enabled());
  EXPECT_DOUBLE_EQ(*g.min_budget, 0.10);
  EXPECT_DOUBLE_EQ(*g.max_burn, 2.0);
  EXPECT_DOUBLE_EQ(*g.max_budget_spend, 0.02);
  EXPECT_FALSE(cfg->environment("staging")->slo_gate.enabled());
}

TEST(SloConfig, BurnAlertsAreANotificationEvent) {
  auto cfg = parse_config(gated("{min_budget: 10%}") +
                              "notifications:\n  - {name: oncall, type: webhook, url_env: U, "
                              "events: [slo_burn, failed]}\n",
                          "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->notifications.at(0).events, (std::vector<std::string>{"slo_burn", "failed"}));
  // Its resolve goes with it: it is no name of its own in ferry.yaml.
  const auto errs = testing::errors_of(gated("{min_budget: 10%}") +
                                       "notifications:\n  - {name: oncall, type: webhook, "
                                       "url_env: U, events: [slo_burn_resolved]}\n");
  const auto* e = testing::find_error(errs, "notifications[0].events",
                                      "event 'slo_burn_resolved' is not one of");
  ASSERT_NE(e, nullptr) << testing::dump(errs);
  EXPECT_NE(e->message.find("backup_failed, slo_burn"), std::string::npos) << e->message;
}

TEST(SloConfig, ALatencyThresholdTheHistogramCannotResolveIsRefused) {
  // 300 ms falls between the router's 250 ms and 500 ms bounds.
  EXPECT_CONFIG_ERROR(app_with("    slo:\n      latency: {threshold: 300ms, target: 99%}\n"),
                      "apps.web.slo.latency.threshold", "250ms, 500ms", 12);
  EXPECT_CONFIG_ERROR(app_with("    slo:\n      latency: {threshold: 1h, target: 99%}\n"),
                      "apps.web.slo.latency.threshold", "out of range", 12);
  EXPECT_CONFIG_ERROR(app_with("    slo:\n      latency: {target: 99%}\n"), "apps.web.slo.latency",
                      "\"threshold\" is required", 12);
}

TEST(SloConfig, PathExclusionsAreKeptAndReachTheRouterOfThatEnvironment) {
  auto cfg = parse_config(
      app_with("    slo:\n      availability: {target: 99.9%, exclude_paths: [/healthz, "
               "\"/internal/*\"]}\n"),
      "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const AppSpec& web = *cfg->app("web");
  ASSERT_TRUE(web.slo.has_value());
  EXPECT_EQ(web.slo->exclude_paths, (std::vector<std::string>{"/healthz", "/internal/*"}));
  // The router of every environment of the app is told (the desired state carries it).
  for (const auto& env : cfg->environments)
    EXPECT_EQ(cfg->app_for_env(web, env.name).router.slo_exclude_paths, web.slo->exclude_paths);
  // An app without exclusions tells its routers nothing.
  auto plain = parse_config(app_with("    slo: {availability: 99.9%}\n"), "f.yaml");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  for (const auto& env : plain->environments)
    EXPECT_TRUE(plain->app_for_env(*plain->app("web"), env.name).router.slo_exclude_paths.empty());
}

TEST(SloConfig, HostilePathExclusionsAreRefusedNamingTheField) {
  const std::string field = "apps.web.slo.availability.exclude_paths";
  auto with = [](const std::string& list) {
    return app_with("    slo:\n      availability: {target: 99.9%, exclude_paths: " + list + "}\n");
  };
  std::string many = "[";
  for (int i = 0; i < 17; ++i) many += (i ? ", /p" : "/p") + std::to_string(i);
  many += "]";
  EXPECT_CONFIG_ERROR(with(many), field, "", 12);
  EXPECT_CONFIG_ERROR(with("[\"/" + std::string(300, 'a') + "\"]"), field, "at most 256", 12);
  EXPECT_CONFIG_ERROR(with("[\"/" + std::string(100'000, 'a') + "\"]"), field + "[0]", "", 12);
  EXPECT_CONFIG_ERROR(with("[healthz]"), field, "does not start with '/'", 12);
  EXPECT_CONFIG_ERROR(with("[\"/health\\x01z\"]"), field, "control character", 12);
  EXPECT_CONFIG_ERROR(with("[\"/health\\tz\"]"), field, "control character", 12);
  EXPECT_CONFIG_ERROR(with("[\"/a/../b\"]"), field, "segment", 12);
  EXPECT_CONFIG_ERROR(with("[\"/*\"]"), field, "every request", 12);
  EXPECT_CONFIG_ERROR(with("[\"/a*b\"]"), field, "before its end", 12);
  EXPECT_CONFIG_ERROR(with("[/healthz, /healthz]"), field, "listed twice", 12);
  EXPECT_CONFIG_ERROR(with("{a: 1}"), field, "", 12);
  EXPECT_CONFIG_ERROR(with("[[/a]]"), field + "[0]", "", 12);
}

TEST(SloConfig, BadTargetsAndWindowsAreRefused) {
  for (const char* bad : {"100%", "1", "40%", "abc", "-5%", "99.9999%", "1e308", "nan"})
    EXPECT_CONFIG_ERROR(app_with(std::string("    slo: {availability: \"") + bad + "\"}\n"),
                        "apps.web.slo.availability", "", 11);
  EXPECT_CONFIG_ERROR(app_with("    slo: {availability: [99]}\n"), "apps.web.slo.availability", "",
                      11);
  for (const char* bad : {"91d", "100000d", "30m", "0s", "forever", "1h30s"})
    EXPECT_CONFIG_ERROR(
        app_with(std::string("    slo: {availability: 99%, window: \"") + bad + "\"}\n"),
        "apps.web.slo.window", "", 11);
  EXPECT_CONFIG_ERROR(app_with("    slo: {window: 30d}\n"), "apps.web.slo", "needs an objective",
                      11);
  EXPECT_CONFIG_ERROR(app_with("    slo: {availabilty: 99%}\n"), "apps.web.slo.availabilty",
                      "did you mean \"availability\"", 11);
  EXPECT_CONFIG_ERROR(app_with("    environments:\n      staging:\n        slo: {window: 2h}\n"),
                      "apps.web.environments.staging.slo", "needs an objective", 13);
}

TEST(SloConfig, BadGateValuesAreRefused) {
  EXPECT_CONFIG_ERROR(gated("{min_budget: 150%}"), "environments.production.slo_gate.min_budget",
                      "out of range", 6);
  EXPECT_CONFIG_ERROR(gated("{max_burn: fast}"), "environments.production.slo_gate.max_burn",
                      "not a burn rate", 6);
  EXPECT_CONFIG_ERROR(gated("{max_burn: 0x}"), "environments.production.slo_gate.max_burn",
                      "out of range", 6);
  EXPECT_CONFIG_ERROR(gated("{max_burn: 1e9x}"), "environments.production.slo_gate.max_burn",
                      "out of range", 6);
  EXPECT_CONFIG_ERROR(gated("{max_budget_spend: 0%}"),
                      "environments.production.slo_gate.max_budget_spend", "every deployment", 6);
  EXPECT_CONFIG_ERROR(gated("{min_budgets: 10%}"), "environments.production.slo_gate.min_budgets",
                      "unknown key", 6);
}

}  // namespace
}  // namespace ferry
