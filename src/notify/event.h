// NotificationEvent: what happened to a deployment that people outside ferry should hear
// about, and the Notifier interface the engine and server send it through.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/json.h"

namespace ferry {

enum class EventKind {
  kDeploymentStarted,
  kStepPassed,
  kAnalysisFailed,
  kRolledBack,
  kSucceeded,
  kFailed,
  kApprovalNeeded,
  kBackupFailed,  // a scheduled backup or its restore drill failed (app/env empty)
  // An SLO's burn-rate alert (page or ticket, docs/slo.md) started firing / stopped: one
  // of each per episode. `events: [slo_burn]` in ferry.yaml lets both through.
  kSloBurn,
  kSloBurnResolved,
};

// "deployment_started", "step_passed", … (the names used in ferry.yaml `events:`).
std::string_view event_kind_name(EventKind k);
std::optional<EventKind> parse_event_kind(std::string_view name);
// Every kind, in declaration order.
const std::vector<EventKind>& all_event_kinds();
// Failures a pager should hear about: analysis_failed, rolled_back, failed.
bool is_failure(EventKind k);

struct NotificationEvent {
  EventKind kind = EventKind::kDeploymentStarted;
  std::string app;
  std::string env;
  std::string release;
  std::string deployment_id;
  std::string actor;   // who started it, or "ferry" for the engine's own decisions
  std::string reason;  // why (a failed analysis's reasons, the approval asked for)
  std::string url;     // the deployment on the dashboard, when the server knows its address
  // The audit chain's head when the event was sent, "SEQ:HASH": every receiver holds a
  // copy, so truncating the audit log shows (`ferry audit verify --expect-head`).
  std::string audit_head;
  // SLO burn events: which alert, "OBJECTIVE/ALERT" (e.g. "availability/page"); empty for
  // the others. A page is critical, a ticket a warning (PagerDuty severity).
  std::string alert;
  SystemTime time{};
};

// The event as JSON (the generic webhook's body fields): kind, app, env, release,
// deployment_id, actor, reason, url, time (RFC 3339), audit_head (when known), and alert
// for SLO burn events.
Json event_to_json(const NotificationEvent& e);
// A one-line human summary: "web v42 → production: rolled back (error rate 7% > 1%)".
std::string event_summary(const NotificationEvent& e);

// Sends events to the outside world. notify() never blocks on the network: an
// implementation queues the event and delivers it on its own thread. Safe to call from
// any thread.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const NotificationEvent& event) = 0;
};

}  // namespace ferry
