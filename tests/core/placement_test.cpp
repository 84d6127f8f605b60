// core/placement.h: an environment's instances are a total spread over its agents, by
// max_per_agent and a spread_by label; impossible placements are refused with a message
// that says what to change.
#include "core/placement.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ferry {
namespace {

std::vector<PlacementAgent> three_hosts() {
  return {{"a", {{"zone", "z1"}}}, {"b", {{"zone", "z1"}}}, {"c", {{"zone", "z2"}}}};
}

int count_on(const std::vector<std::string>& p, const std::string& agent) {
  return static_cast<int>(std::count(p.begin(), p.end(), agent));
}

TEST(Placement, TotalIsSpreadOneByOneOverTheAgents) {
  auto p = place_instances(4, three_hosts(), {});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, (std::vector<std::string>{"a", "b", "c", "a"}));
  EXPECT_EQ(describe_placement(*p), "a: 2, b: 1, c: 1");
}

TEST(Placement, FewerInstancesThanAgentsLeaveAgentsEmpty) {
  auto p = place_instances(1, three_hosts(), {});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(place_instances(0, three_hosts(), {})->empty());
}

TEST(Placement, SpreadByBalancesTheLabelGroupsFirst) {
  // Zone z1 has two hosts, z2 one: the zones get 2 and 2, not a, b, c, a (3 in z1).
  auto p = place_instances(4, three_hosts(), {.spread_by = "zone"});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, (std::vector<std::string>{"a", "c", "b", "c"}));
  // The first instances (a canary of 2, a first batch) already cover both zones.
  EXPECT_NE((*p)[0], (*p)[1]);
}

TEST(Placement, MaxPerAgentCapsEveryAgent) {
  auto p = place_instances(3, three_hosts(), {.max_per_agent = 1, .spread_by = "zone"});
  ASSERT_TRUE(p.ok()) << p.status().message();
  for (const char* a : {"a", "b", "c"}) EXPECT_EQ(count_on(*p, a), 1) << a;
  // Without the cap, zone balance would put a second instance on c.
  auto uncapped = place_instances(6, three_hosts(), {.max_per_agent = 2, .spread_by = "zone"});
  ASSERT_TRUE(uncapped.ok());
  for (const char* a : {"a", "b", "c"}) EXPECT_EQ(count_on(*uncapped, a), 2) << a;
}

TEST(Placement, MoreInstancesThanCapacityIsRefused) {
  auto p = place_instances(7, three_hosts(), {.max_per_agent = 2});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_NE(
      p.status().message().find("7 instance(s) do not fit on 3 agent(s) with max_per_agent 2"),
      std::string::npos)
      << p.status().message();
}

TEST(Placement, AMissingSpreadByLabelIsRefusedNamingTheAgent) {
  auto agents = three_hosts();
  agents[1].labels.clear();
  auto p = place_instances(2, agents, {.spread_by = "zone"});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("agent \"b\" has no label \"zone\""), std::string::npos)
      << p.status().message();
  // Also with nothing to place: validate checks the labels on their own.
  EXPECT_FALSE(place_instances(0, agents, {.spread_by = "zone"}).ok());
}

TEST(Placement, BadInputsAreRefused) {
  EXPECT_FALSE(place_instances(1, {}, {}).ok());
  EXPECT_FALSE(place_instances(-1, three_hosts(), {}).ok());
  EXPECT_FALSE(place_instances(1, three_hosts(), {.max_per_agent = -1}).ok());
}

TEST(Placement, SlotsOnAnAgentArePrefixesOfThePlacement) {
  const std::vector<std::string> p{"a", "b", "c", "a"};
  EXPECT_EQ(slots_on(p, 4, "a"), (std::vector<int>{0, 3}));
  EXPECT_EQ(slots_on(p, 2, "a"), (std::vector<int>{0}));
  EXPECT_TRUE(slots_on(p, 2, "c").empty());
  EXPECT_EQ(slots_on(p, 99, "c"), (std::vector<int>{2}));  // clamped to the placement
}

TEST(Placement, MoveOffGivesALostAgentsSlotsToTheOthersAndKeepsTheRest) {
  const std::vector<std::string> p{"a", "b", "c", "a"};
  auto m = move_off(p, {"b"}, three_hosts(), {});
  ASSERT_TRUE(m.ok()) << m.status().message();
  // Slot 1 goes to c (one instance, against a's two); nothing else moves.
  EXPECT_EQ(*m, (std::vector<std::string>{"a", "c", "c", "a"}));
  // With zones, b's slot stays in its zone (z1: a) while a has room.
  auto z = move_off({"a", "c", "b", "c"}, {"b"}, three_hosts(), {.spread_by = "zone"});
  ASSERT_TRUE(z.ok()) << z.status().message();
  EXPECT_EQ(*z, (std::vector<std::string>{"a", "c", "a", "c"}));
  // Nothing on the lost agent: unchanged.
  EXPECT_EQ(*move_off(p, {"x"}, three_hosts(), {}), p);
}

TEST(Placement, MoveOffIsRefusedWhenTheOthersAreFull) {
  auto m = move_off({"a", "b", "c"}, {"b"}, three_hosts(), {.max_per_agent = 1});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("max_per_agent 1"), std::string::npos)
      << m.status().message();
  EXPECT_FALSE(move_off({"a", "b"}, {"a", "b", "c"}, three_hosts(), {}).ok());
}

TEST(Placement, IsDeterministic) {
  auto x = place_instances(9, three_hosts(), {.spread_by = "zone"});
  auto y = place_instances(9, three_hosts(), {.spread_by = "zone"});
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(*x, *y);
}

}  // namespace
}  // namespace ferry
