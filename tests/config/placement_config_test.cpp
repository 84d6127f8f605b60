// Placement settings (issue 16): environments.NAME.max_per_agent / spread_by,
// agents.NAME.labels / listen; `ferry validate` refuses placements the engine could not
// carry out, naming the field and what to change.
#include "config_test_util.h"

namespace ferry {
namespace {

const std::string kPlaceHosts = R"(version: 1
agents:
  a: {address: "10.0.0.1:7071", tls: true, labels: {zone: z1}}
  b: {address: "10.0.0.2:7071", tls: true, labels: {zone: z2}, listen: 10.0.0.2}
  c: {address: "127.0.0.1:7072"}
environments:
  production:
    agents: [a, b]
)";
std::string place_app(const std::string& extra = "") {
  return "apps:\n  web:\n    port: 8080\n    instances: 4\n" + extra +
         "    run:\n      command: [\"./server\"]\n";
}

TEST(PlacementConfig, LabelsListenAndRulesAreRead) {
  auto cfg = parse_config(kPlaceHosts + "    max_per_agent: 2\n    spread_by: zone\n" + place_app(),
                          "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const auto* e = cfg->environment("production");
  EXPECT_EQ(e->max_per_agent, 2);
  EXPECT_EQ(e->spread_by, "zone");
  EXPECT_EQ(cfg->agent("a")->labels.at("zone"), "z1");
  EXPECT_EQ(cfg->agent("b")->listen, "10.0.0.2");
}

TEST(PlacementConfig, ListenIsPerAgentAndWildcardOnRemoteHosts) {
  auto cfg = parse_config(kPlaceHosts + place_app(), "f.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  const AppSpec& web = *cfg->app("web");
  EXPECT_EQ(cfg->listen_for(web, "a"), "0.0.0.0");    // remote, no listen of its own
  EXPECT_EQ(cfg->listen_for(web, "b"), "10.0.0.2");   // agents.b.listen
  EXPECT_EQ(cfg->listen_for(web, "c"), "127.0.0.1");  // an agent on this host
  EXPECT_EQ(cfg->listen_for(web, "local"), "127.0.0.1");
  auto set = parse_config(kPlaceHosts + place_app("    listen: \"::1\"\n"), "f.yaml");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->listen_for(*set->app("web"), "a"), "::1");  // written: taken as is
  EXPECT_EQ(set->listen_for(*set->app("web"), "b"), "10.0.0.2");
}

TEST(PlacementConfig, MoreInstancesThanAgentsTimesMaxIsRefused) {
  auto errors = testing::errors_of(kPlaceHosts + "    max_per_agent: 1\n" + place_app());
  EXPECT_NE(testing::find_error(errors, "apps.web.instances",
                                "app \"web\" in environment \"production\": 4 instance(s) do not "
                                "fit on 2 agent(s) with max_per_agent 1"),
            nullptr)
      << testing::dump(errors);
  EXPECT_TRUE(testing::errors_of(kPlaceHosts + "    max_per_agent: 2\n" + place_app()).empty());
}

TEST(PlacementConfig, PerEnvironmentInstancesAreCheckedWhereWritten) {
  auto errors =
      testing::errors_of(kPlaceHosts + "    max_per_agent: 2\n" +
                         place_app("    environments:\n      production: {instances: 5}\n"));
  EXPECT_NE(testing::find_error(errors, "apps.web.environments.production.instances",
                                "5 instance(s) do not fit"),
            nullptr)
      << testing::dump(errors);
}

TEST(PlacementConfig, SpreadByLabelMissingOnAnAgentIsRefused) {
  const std::string hosts = R"(version: 1
agents:
  a: {address: "10.0.0.1:7071", tls: true, labels: {zone: z1}}
  b: {address: "10.0.0.2:7071", tls: true}
environments:
  production:
    agents: [a, b]
    spread_by: zone
)";
  auto errors = testing::errors_of(hosts + place_app());
  EXPECT_NE(testing::find_error(errors, "environments.production.spread_by",
                                "agent \"b\" has no label \"zone\""),
            nullptr)
      << testing::dump(errors);
  // On the local agent (no agents listed) there are no labels to spread by.
  auto local = testing::errors_of(std::string(testing::kMinimal)
                                      .replace(std::string(testing::kMinimal).find("  staging: {}"),
                                               13, "  staging: {spread_by: zone}"));
  EXPECT_NE(testing::find_error(local, "environments.staging.spread_by", "local agent"), nullptr)
      << testing::dump(local);
}

TEST(PlacementConfig, BadValuesAreRefusedNamingTheField) {
  for (const auto& [bad, field] : std::vector<std::pair<std::string, std::string>>{
           {"    max_per_agent: 0\n", "environments.production.max_per_agent"},
           {"    max_per_agent: 101\n", "environments.production.max_per_agent"},
           {"    spread_by: \"Zone!\"\n", "environments.production.spread_by"},
       }) {
    auto errors = testing::errors_of(kPlaceHosts + bad + place_app());
    EXPECT_FALSE(errors.empty()) << bad;
    EXPECT_NE(testing::find_error(errors, field, ""), nullptr) << bad << testing::dump(errors);
  }
  const std::string bad_label = R"(version: 1
agents:
  a: {address: "10.0.0.1:7071", tls: true, labels: {zone: "z 1"}}
  b: {address: "10.0.0.2:7071", tls: true, listen: "not-an-ip"}
environments:
  production:
    agents: [a, b]
)";
  auto errors = testing::errors_of(bad_label + place_app());
  EXPECT_NE(testing::find_error(errors, "agents.a.labels.zone", "not a label value"), nullptr)
      << testing::dump(errors);
  EXPECT_NE(testing::find_error(errors, "agents.b.listen", "not an IP address"), nullptr)
      << testing::dump(errors);
}

TEST(PlacementConfig, OneHostsAddressForManyHostsIsRefused) {
  auto errors = testing::errors_of(kPlaceHosts + place_app("    listen: 10.0.0.1\n"));
  EXPECT_NE(testing::find_error(errors, "apps.web.listen",
                                "set agents.NAME.listen for each of \"a\", or leave"),
            nullptr)
      << testing::dump(errors);
  // A wildcard or loopback address is valid on every host.
  EXPECT_TRUE(testing::errors_of(kPlaceHosts + place_app("    listen: 0.0.0.0\n")).empty());
}

}  // namespace
}  // namespace ferry
