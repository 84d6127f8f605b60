// environments.NAME.chaos: `allowed` lets game days (`ferry chaos`) run there; the default
// and `refused` do not (EnvironmentSpec::chaos_allowed); anything else is refused naming
// the field and the value.
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
  auto allowed = parse_config(with_chaos("allowed"), "f.yaml");
  ASSERT_TRUE(allowed.ok()) << allowed.status().message();
  EXPECT_TRUE(allowed->environment("staging")->chaos_allowed);
  EXPECT_FALSE(allowed->environment("production")->chaos_allowed);  // the default
  auto refused = parse_config(with_chaos("refused"), "f.yaml");
  ASSERT_TRUE(refused.ok()) << refused.status().message();
  EXPECT_FALSE(refused->environment("staging")->chaos_allowed);
  auto minimal = parse_config(testing::kMinimal, "f.yaml");
  ASSERT_TRUE(minimal.ok()) << minimal.status().message();
  for (const auto& e : minimal->environments) EXPECT_FALSE(e.chaos_allowed) << e.name;
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
