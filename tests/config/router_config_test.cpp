// apps.<name>.router: defaults, every setting, and an error naming the field and value for
// each bad one.
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "core/agent_api.h"

namespace ferry {
namespace {

using testing::kMinimal;

std::string with_router(const std::string& body) {
  return std::string(kMinimal) + "    router:\n" + body;
}

TEST(RouterConfig, DefaultsArePinningOffShieldOnNoAffinity) {
  auto c = check_config(kMinimal, "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  const RouterSpec& r = c.config->apps[0].router;
  EXPECT_FALSE(r.pinning());
  EXPECT_TRUE(r.trusted_proxies.empty());
  EXPECT_TRUE(r.shield);
  EXPECT_EQ(r.affinity, "none");
  EXPECT_EQ(r.request_body_timeout_ms, 60'000);
}

TEST(RouterConfig, EverySettingIsReadAndReachesTheAgentState) {
  auto c = check_config(with_router("      trusted_proxies: [10.0.0.0/8, \"::1\"]\n"
                                    "      pinning:\n"
                                    "        from: [127.0.0.1/32]\n"
                                    "        tokens: true\n"
                                    "      shield: false\n"
                                    "      affinity: header:X-User-Id\n"
                                    "      request_body_timeout: 5s\n"),
                        "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  const RouterSpec& r = c.config->apps[0].router;
  EXPECT_EQ(r.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(r.pin_from, (std::vector<std::string>{"127.0.0.1/32"}));
  EXPECT_TRUE(r.pin_tokens);
  EXPECT_FALSE(r.shield);
  EXPECT_EQ(r.affinity, "header:X-User-Id");
  EXPECT_EQ(r.request_body_timeout_ms, 5000);
  // The agent API carries it unchanged.
  AppDesiredState d;
  d.app = "web.production";
  d.router = r;
  d.stable_release = "v1";
  Json j;
  to_json(j, d);
  AppDesiredState back;
  from_json(j, back);
  EXPECT_EQ(Json(back.router), Json(r));
  EXPECT_EQ(back.stable_release, "v1");
  // An older server sends no router settings: the defaults apply.
  j.erase("router");
  from_json(j, back);
  EXPECT_FALSE(back.router.pinning());
  EXPECT_TRUE(back.router.shield);
}

TEST(RouterConfig, BadValuesNameTheFieldAndValue) {
  EXPECT_CONFIG_ERROR(with_router("      trusted_proxies: [10.0.0.0/33]\n"),
                      "apps.web.router.trusted_proxies", "\"10.0.0.0/33\" is not an address range",
                      12);
  EXPECT_CONFIG_ERROR(with_router("      pinning:\n        from: [everyone]\n"),
                      "apps.web.router.pinning.from", "\"everyone\" is not an address range", 13);
  EXPECT_CONFIG_ERROR(with_router("      pinning:\n        tokens: false\n"),
                      "apps.web.router.pinning", "leave it out to keep pinning off", 13);
  EXPECT_CONFIG_ERROR(with_router("      affinity: sticky\n"), "apps.web.router.affinity",
                      "\"sticky\" is not an affinity", 12);
  EXPECT_CONFIG_ERROR(with_router("      affinity: \"header:X User\"\n"),
                      "apps.web.router.affinity", "is not an affinity", 12);
  EXPECT_CONFIG_ERROR(with_router("      request_body_timeout: 10ms\n"),
                      "apps.web.router.request_body_timeout", "out of range", 12);
  EXPECT_CONFIG_ERROR(with_router("      shield: maybe\n"), "apps.web.router.shield", "maybe", 12);
  EXPECT_CONFIG_ERROR(with_router("      sticky: true\n"), "apps.web.router.sticky", "unknown", 12);
}

}  // namespace
}  // namespace ferry
