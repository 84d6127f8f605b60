// environments.NAME.agent_timeout / on_agent_loss / min_available (issue 16): defaults,
// values and every bad input named by field, so `ferry validate` never accepts what the
// engine cannot carry out.
#include "config_test_util.h"

namespace ferry {
namespace {

const std::string kLossHosts = R"(version: 1
agents:
  a: {address: "10.0.0.1:7071", token_file: /etc/ferry/a.token, tls: true}
  b: {address: "10.0.0.2:7071", token_file: /etc/ferry/b.token, tls: true}
environments:
  production:
    agents: [a, b]
)";
const std::string kLossApp = R"(apps:
  web:
    port: 8080
    run:
      command: ["./server"]
)";

std::vector<ConfigError> loss_errors_with(const std::string& env_lines) {
  return testing::errors_of(kLossHosts + env_lines + kLossApp);
}

TEST(AgentLossConfig, DefaultsArePauseAfterThirtySeconds) {
  auto cfg = parse_config(kLossHosts + kLossApp, "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const auto* e = cfg->environment("production");
  EXPECT_EQ(e->agent_timeout_ms, 30'000);
  EXPECT_EQ(e->on_agent_loss, "pause");
  EXPECT_EQ(e->min_available, 1);
}

TEST(AgentLossConfig, ValuesAreRead) {
  auto cfg = parse_config(
      kLossHosts + "    agent_timeout: 10s\n    on_agent_loss: continue\n    min_available: 2\n" +
          kLossApp,
      "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const auto* e = cfg->environment("production");
  EXPECT_EQ(e->agent_timeout_ms, 10'000);
  EXPECT_EQ(e->on_agent_loss, "continue");
  EXPECT_EQ(e->min_available, 2);
}

TEST(AgentLossConfig, BadValuesAreRefusedNamingTheField) {
  for (const char* bad :
       {"    on_agent_loss: ignore\n", "    agent_timeout: 0s\n", "    agent_timeout: 2h\n",
        "    agent_timeout: soon\n", "    min_available: 0\n", "    min_available: -1\n"}) {
    auto errors = loss_errors_with(bad);
    ASSERT_FALSE(errors.empty()) << bad;
    const std::string key = std::string(bad).substr(4, std::string(bad).find(':') - 4);
    EXPECT_NE(testing::find_error(errors, "environments.production." + key, ""), nullptr)
        << bad << testing::dump(errors);
  }
}

TEST(AgentLossConfig, MinAvailableAboveTheAgentCountIsRefused) {
  auto errors = loss_errors_with("    min_available: 3\n");
  EXPECT_NE(testing::find_error(errors, "environments.production.min_available",
                                "more than the 2 agent(s)"),
            nullptr)
      << testing::dump(errors);
  EXPECT_TRUE(loss_errors_with("    min_available: 2\n").empty());
}

}  // namespace
}  // namespace ferry
