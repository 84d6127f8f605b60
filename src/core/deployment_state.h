// The deployment lifecycle as types: the states a deployment passes through and the
// events it records. Everything inside the control plane uses these enums; strings
// exist only where a state or event leaves the process (the store's columns, the API's
// JSON), through to_string() and the parse functions below.
//
//   pending ──▶ waiting (a gate holds it) ──▶ running ⇄ paused
//      │            │                            │
//      │            └──▶ failed (gate refused)   ├──▶ succeeded
//      └──▶ aborted                              ├──▶ rolling_back ──▶ rolled_back | failed |
//      aborted
//                                                └──▶ failed
//
// The final states (is_final) end a deployment: nothing changes it afterwards and it no
// longer counts against the one-deployment-in-progress rule of an app and environment
// (store/store.h). There is no "superseded": a newer deployment never replaces one in
// progress, it waits for it (or the operator aborts it).
#pragma once

#include <iosfwd>
#include <optional>
#include <span>
#include <string_view>

namespace ferry {

enum class DeploymentState {
  kPending,      // created; gates not yet checked
  kWaiting,      // a gate (approval, window, freeze) holds it; reason says which
  kRunning,      // executing its plan
  kPaused,       // an operator paused it; the current step holds
  kRollingBack,  // traffic returning to the previous release
  kSucceeded,    // final: the new release is stable
  kFailed,       // final: refused by a gate, or failed with nothing to roll back to
  kRolledBack,   // final: failed, and the previous release serves again
  kAborted,      // final: an operator stopped it; traffic back on the previous release
};

// One definition of "finished": the store's constraint, list filters, metrics and the
// dashboard (GET /api/v1/dashboard "final_states") all derive from this.
constexpr bool is_final(DeploymentState s) {
  return s == DeploymentState::kSucceeded || s == DeploymentState::kFailed ||
         s == DeploymentState::kRolledBack || s == DeploymentState::kAborted;
}

// Every state, in lifecycle order (tests, the store's checks, the dashboard).
std::span<const DeploymentState> all_deployment_states();
// The final ones, in the same order.
std::span<const DeploymentState> final_deployment_states();

std::string_view to_string(DeploymentState s);
// nullopt for a name that is not a state.
std::optional<DeploymentState> parse_deployment_state(std::string_view name);

// What a deployment records in its event log (the store's deployment_events.type).
enum class EventType {
  kCreated,         // requested; data: plan, previous_release, rollback, scan_override
  kGateWaiting,     // a gate holds it (state waiting)
  kGateRefused,     // a gate refused it (state failed)
  kGateOverride,    // an admin overrode a gate (governance)
  kGatesPassed,     // every gate passed; the plan starts
  kStepStarted,     // step `step` began (committed before acting)
  kStepFinished,    // step `step` ended (committed after acting)
  kWaitingPromote,  // a step waits for `ferry promote`
  kAnalysis,        // an analysis verdict; data: verdict, reasons, metrics
  kPaused,
  kResumed,  // an operator resumed it, or the engine resumed it after a restart
  kHookFinished,
  kHookFailed,
  kRollbackStarted,   // traffic goes back to the previous release
  kRolledBack,        // final event of a rolled-back deployment
  kAborted,           // final event of an aborted deployment
  kFailed,            // final event of a failed deployment
  kCommand,           // an operator's command (promote, pause, resume, abort) was received
  kAgentUnreachable,  // a call to an agent failed (data: agent, address, error)
  kAgentReachable,    // that agent answers again
  kAgentLost,         // an agent stayed unreachable past agent_timeout; on_agent_loss decides
  kRollbackWaiting,   // a rollback waits for agents still behind (data: agents_behind)
  kPlaced,            // where the instances run (data: placement {new, old}, per_agent)
};

std::span<const EventType> all_event_types();
std::string_view to_string(EventType t);
std::optional<EventType> parse_event_type(std::string_view name);

// gtest and log output.
std::ostream& operator<<(std::ostream& os, DeploymentState s);
std::ostream& operator<<(std::ostream& os, EventType t);

}  // namespace ferry
