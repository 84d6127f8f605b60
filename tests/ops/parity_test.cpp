// `ferry diff`: differences ferry.yaml declares per environment are shown but are not
// drift; a different release or a missing secret is.
#include "ops/parity.h"

#include <gtest/gtest.h>

#include "config/loader.h"

namespace ferry::ops {
namespace {

const char* kYaml = R"(version: 1
environments:
  staging: {}
  production:
    requires: [staging]
    approvals: 1
apps:
  web:
    port: 8080
    instances: 2
    run:
      command: ["./server", "--port", "${PORT}"]
      env: {LOG_LEVEL: info, FEATURE_X: "off"}
    environments:
      production: {instances: 4, env: {LOG_LEVEL: warn}}
  api:
    port: 8081
    run: {command: ["./api"]}
)";

Config load() {
  auto r = check_config(kYaml, "ferry.yaml");
  EXPECT_TRUE(r.errors.empty());
  return *r.config;
}

const ParityRow* row(const ParityReport& r, const std::string& app, const std::string& field) {
  for (const auto& x : r.rows)
    if (x.app == app && x.field == field) return &x;
  return nullptr;
}

FactsByApp facts(const std::string& web_prod_release, std::vector<std::string> prod_secrets) {
  FactsByApp f;
  f["web"]["staging"] = EnvFacts{"v7", {"DB_PASSWORD", "STRIPE_KEY"}, true};
  f["web"]["production"] = EnvFacts{web_prod_release, std::move(prod_secrets), true};
  f["api"]["staging"] = EnvFacts{"v3", {}, true};
  f["api"]["production"] = EnvFacts{"v3", {}, true};
  return f;
}

TEST(Parity, DeclaredOverridesAreNotDrift) {
  const Config c = load();
  auto r = compare_environments(c, "staging", "production", "",
                                facts("v7", {"DB_PASSWORD", "STRIPE_KEY"}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->drift) << parity_table(*r);
  const ParityRow* inst = row(*r, "web", "instances");
  ASSERT_NE(inst, nullptr);
  EXPECT_EQ(inst->a, "2");
  EXPECT_EQ(inst->b, "4");
  EXPECT_FALSE(inst->same);
  EXPECT_TRUE(inst->declared);
  const ParityRow* vals = row(*r, "web", "env values");
  ASSERT_NE(vals, nullptr);
  EXPECT_TRUE(vals->declared);
  // Values never appear, only the key whose value differs.
  EXPECT_EQ(parity_table(*r).find("warn"), std::string::npos);
  EXPECT_NE(parity_table(*r).find("LOG_LEVEL"), std::string::npos);
  EXPECT_TRUE(row(*r, "", "approvals")->declared);
  EXPECT_TRUE(row(*r, "api", "release")->same);
}

TEST(Parity, AnotherReleaseOrAMissingSecretIsDrift) {
  const Config c = load();
  auto r = compare_environments(c, "staging", "production", "web", facts("v6", {"DB_PASSWORD"}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->drift);
  EXPECT_FALSE(row(*r, "web", "release")->same);
  EXPECT_FALSE(row(*r, "web", "release")->declared);
  EXPECT_EQ(row(*r, "web", "secrets")->b, "DB_PASSWORD");
  EXPECT_EQ(row(*r, "api", "release"), nullptr);  // --app web
  const Json j = parity_to_json(*r);
  EXPECT_TRUE(j["drift"].get<bool>());
  EXPECT_EQ(j["a"], "staging");
}

TEST(Parity, ConfigOnlyAndUnknownNames) {
  const Config c = load();
  auto r = compare_environments(c, "staging", "production", "", {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->drift);
  EXPECT_EQ(row(*r, "web", "release"), nullptr);
  EXPECT_FALSE(compare_environments(c, "staging", "prod", "", {}).ok());
  EXPECT_FALSE(compare_environments(c, "staging", "production", "nope", {}).ok());
}

}  // namespace
}  // namespace ferry::ops
