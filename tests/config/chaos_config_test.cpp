// environments.NAME.chaos: `allowed` lets game days (`ferry chaos`) run there; the default
// and `refused` do not; anything else is refused naming the field and the value.
#include "config/chaos_policy.h"
#include "config_test_util.h"

namespace ferry {
namespace {

std::string with_chaos(const std::string& value) {
  return std::string(R"(version: 1
environments:
  staging:
    chaos: )") +
         value + R"(
  production: {}
apps:
  web:
    port: 8080
    run:
      command: ["./server"]
)";
}

TEST(ChaosConfig, AllowedIsReadAndTheDefaultRefuses) {
  auto cfg = parse_config(with_chaos("allowed"), "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(chaos_allowed_environments(with_chaos("allowed")), std::set<std::string>{"staging"});
  ASSERT_TRUE(parse_config(with_chaos("refused"), "f.yaml").ok());
  EXPECT_TRUE(chaos_allowed_environments(with_chaos("refused")).empty());
  EXPECT_TRUE(chaos_allowed_environments(testing::kMinimal).empty());
  EXPECT_TRUE(chaos_allowed_environments("environments: [").empty());
  EXPECT_TRUE(chaos_allowed_environments("environments: [staging]").empty());
}

TEST(ChaosConfig, OtherValuesAreRefusedNamingTheFieldAndValue) {
  for (const char* v : {"yes", "true", "Allowed", "[allowed]", "{a: 1}"}) {
    auto errors = testing::errors_of(with_chaos(v));
    const ConfigError* e = testing::find_error(errors, "environments.staging.chaos", "");
    ASSERT_NE(e, nullptr) << v << "\n" << testing::dump(errors);
    EXPECT_EQ(e->line, 4) << testing::dump(errors);
  }
}

}  // namespace
}  // namespace ferry
