#include "core/deployment_state.h"

#include <array>
#include <ostream>
#include <utility>

namespace ferry {
namespace {

using S = DeploymentState;
constexpr std::array<std::pair<S, std::string_view>, 9> kStateNames = {{
    {S::kPending, "pending"},
    {S::kWaiting, "waiting"},
    {S::kRunning, "running"},
    {S::kPaused, "paused"},
    {S::kRollingBack, "rolling_back"},
    {S::kSucceeded, "succeeded"},
    {S::kFailed, "failed"},
    {S::kRolledBack, "rolled_back"},
    {S::kAborted, "aborted"},
}};

constexpr auto kAllStates = [] {
  std::array<S, kStateNames.size()> out{};
  for (size_t i = 0; i < kStateNames.size(); ++i) out[i] = kStateNames[i].first;
  return out;
}();

constexpr size_t kFinalCount = [] {
  size_t n = 0;
  for (auto s : kAllStates) n += is_final(s) ? 1 : 0;
  return n;
}();

constexpr auto kFinalStates = [] {
  std::array<S, kFinalCount> out{};
  size_t n = 0;
  for (auto s : kAllStates)
    if (is_final(s)) out[n++] = s;
  return out;
}();

using E = EventType;
constexpr std::array<std::pair<E, std::string_view>, 23> kEventNames = {{
    {E::kCreated, "created"},
    {E::kGateWaiting, "gate_waiting"},
    {E::kGateRefused, "gate_refused"},
    {E::kGateOverride, "gate_override"},
    {E::kGatesPassed, "gates_passed"},
    {E::kStepStarted, "step_started"},
    {E::kStepFinished, "step_finished"},
    {E::kWaitingPromote, "waiting_promote"},
    {E::kAnalysis, "analysis"},
    {E::kPaused, "paused"},
    {E::kResumed, "resumed"},
    {E::kHookFinished, "hook_finished"},
    {E::kHookFailed, "hook_failed"},
    {E::kRollbackStarted, "rollback_started"},
    {E::kRolledBack, "rolled_back"},
    {E::kAborted, "aborted"},
    {E::kFailed, "failed"},
    {E::kCommand, "command"},
    {E::kAgentUnreachable, "agent_unreachable"},
    {E::kAgentReachable, "agent_reachable"},
    {E::kAgentLost, "agent_lost"},
    {E::kRollbackWaiting, "rollback_waiting"},
    {E::kPlaced, "placed"},
}};

constexpr auto kAllEvents = [] {
  std::array<E, kEventNames.size()> out{};
  for (size_t i = 0; i < kEventNames.size(); ++i) out[i] = kEventNames[i].first;
  return out;
}();

// The tables are indexed by the enum's value: keep them in declaration order.
constexpr bool tables_in_order() {
  for (size_t i = 0; i < kStateNames.size(); ++i)
    if (static_cast<size_t>(kStateNames[i].first) != i) return false;
  for (size_t i = 0; i < kEventNames.size(); ++i)
    if (static_cast<size_t>(kEventNames[i].first) != i) return false;
  return true;
}
static_assert(tables_in_order(), "state/event name tables must follow the enum order");
static_assert(static_cast<size_t>(S::kAborted) + 1 == kStateNames.size(),
              "every DeploymentState needs a name");
static_assert(static_cast<size_t>(E::kPlaced) + 1 == kEventNames.size(),
              "every EventType needs a name");

}  // namespace

std::span<const DeploymentState> all_deployment_states() {
  return kAllStates;
}
std::span<const DeploymentState> final_deployment_states() {
  return kFinalStates;
}

std::string_view to_string(DeploymentState s) {
  const auto i = static_cast<size_t>(s);
  return i < kStateNames.size() ? kStateNames[i].second : "unknown";
}

std::optional<DeploymentState> parse_deployment_state(std::string_view name) {
  for (const auto& [s, n] : kStateNames)
    if (n == name) return s;
  return std::nullopt;
}

std::span<const EventType> all_event_types() {
  return kAllEvents;
}

std::string_view to_string(EventType t) {
  const auto i = static_cast<size_t>(t);
  return i < kEventNames.size() ? kEventNames[i].second : "unknown";
}

std::optional<EventType> parse_event_type(std::string_view name) {
  for (const auto& [t, n] : kEventNames)
    if (n == name) return t;
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, DeploymentState s) {
  return os << to_string(s);
}
std::ostream& operator<<(std::ostream& os, EventType t) {
  return os << to_string(t);
}

}  // namespace ferry
