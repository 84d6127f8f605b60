#include "core/deployment_state.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

namespace ferry {
namespace {

TEST(DeploymentState, EveryStateRoundTripsThroughItsName) {
  std::set<std::string> names;
  for (auto s : all_deployment_states()) {
    const std::string name(to_string(s));
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    auto back = parse_deployment_state(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(names.size(), all_deployment_states().size());
}

TEST(DeploymentState, FinalStatesAreExactlyTheEndsOfTheLifecycle) {
  // No "superseded": nothing ever set it, so it is not a state at all.
  EXPECT_FALSE(parse_deployment_state("superseded").has_value());
  std::set<std::string> final_names;
  for (auto s : final_deployment_states()) {
    EXPECT_TRUE(is_final(s));
    final_names.insert(std::string(to_string(s)));
  }
  EXPECT_EQ(final_names, (std::set<std::string>{"succeeded", "failed", "rolled_back", "aborted"}));
  for (auto s : all_deployment_states())
    EXPECT_EQ(is_final(s), final_names.count(std::string(to_string(s))) == 1) << s;
  // States a deployment passes through on its way are not final.
  for (auto s : {DeploymentState::kPending, DeploymentState::kWaiting, DeploymentState::kRunning,
                 DeploymentState::kPaused, DeploymentState::kRollingBack})
    EXPECT_FALSE(is_final(s)) << s;
}

TEST(DeploymentState, UnknownAndHostileNamesAreRejected) {
  for (const char* bad : {"", "Succeeded", "succeeded ", " running", "running\n", "unknown",
                          "pending'; DROP TABLE deployments; --", "rolled-back"})
    EXPECT_FALSE(parse_deployment_state(bad).has_value()) << bad;
  EXPECT_FALSE(parse_deployment_state(std::string_view("running\0x", 9)).has_value());
}

TEST(EventType, EveryTypeRoundTripsAndUnknownNamesAreRejected) {
  std::set<std::string> names;
  for (auto t : all_event_types()) {
    const std::string name(to_string(t));
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_EQ(parse_event_type(name), t);
  }
  for (const char* bad : {"", "tick", "STEP_STARTED", "step started"})
    EXPECT_FALSE(parse_event_type(bad).has_value()) << bad;
  std::ostringstream os;
  os << EventType::kRollbackStarted << " " << DeploymentState::kRolledBack;
  EXPECT_EQ(os.str(), "rollback_started rolled_back");
}

}  // namespace
}  // namespace ferry
