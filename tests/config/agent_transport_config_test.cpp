// agents.NAME.tls / insecure (issue 16): `ferry validate` refuses a remote agent the server
// would call over plain HTTP without the file saying so — the calls carry the agent token
// and the apps' decrypted secrets.
#include "config_test_util.h"

namespace ferry {
namespace {

std::string with_agent(const std::string& entry) {
  return "version: 1\nagents:\n  a: " + entry +
         "\nenvironments:\n  production:\n    agents: [a]\napps:\n  web:\n    port: 8080\n"
         "    run:\n      command: [\"./server\"]\n";
}

TEST(AgentTransportConfig, ARemoteAgentWithoutTlsOrInsecureIsRefusedSayingHowToEnroll) {
  auto errors = testing::errors_of(with_agent("{address: \"10.0.0.1:7071\"}"));
  const ConfigError* e =
      testing::find_error(errors, "agents.a.address", "is not a loopback address");
  ASSERT_NE(e, nullptr) << testing::dump(errors);
  EXPECT_NE(e->message.find("10.0.0.1:7071"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("ferry agents enroll a"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("insecure: true"), std::string::npos) << e->message;
  // A host name is not loopback either.
  EXPECT_NE(testing::find_error(testing::errors_of(with_agent("{address: \"box-1.lan:7071\"}")),
                                "agents.a.address", "not a loopback address"),
            nullptr);
}

TEST(AgentTransportConfig, TlsOrInsecureOrLoopbackIsAccepted) {
  for (const std::string entry :
       {"{address: \"10.0.0.1:7071\", tls: true}", "{address: \"10.0.0.1:7071\", insecure: true}",
        "{address: \"127.0.0.1:7071\"}", "{address: \"[::1]:7071\"}",
        "{address: \"localhost:7071\", tls: true}"}) {
    auto cfg = parse_config(with_agent(entry), "f.yaml");
    ASSERT_TRUE(cfg.ok()) << entry << ": " << cfg.status().message();
  }
  auto cfg = parse_config(with_agent("{address: \"10.0.0.1:7071\", tls: true}"), "f.yaml");
  ASSERT_TRUE(cfg.ok());
  EXPECT_TRUE(cfg->agents[0].tls);
  EXPECT_FALSE(cfg->agents[0].insecure);
}

TEST(AgentTransportConfig, BadValuesAndContradictionsAreRefused) {
  auto both =
      testing::errors_of(with_agent("{address: \"10.0.0.1:7071\", tls: true, insecure: true}"));
  EXPECT_NE(testing::find_error(both, "agents.a.insecure", "contradicts tls: true"), nullptr)
      << testing::dump(both);
  auto word = testing::errors_of(with_agent("{address: \"10.0.0.1:7071\", insecure: yes please}"));
  EXPECT_NE(testing::find_error(word, "agents.a.insecure", ""), nullptr) << testing::dump(word);
  // `insecure: false` is no opt-out: still refused.
  auto no = testing::errors_of(with_agent("{address: \"10.0.0.1:7071\", insecure: false}"));
  EXPECT_NE(testing::find_error(no, "agents.a.address", "not a loopback address"), nullptr)
      << testing::dump(no);
}

}  // namespace
}  // namespace ferry
