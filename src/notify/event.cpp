#include "notify/event.h"

namespace ferry {

namespace {
struct KindName {
  EventKind kind;
  std::string_view name;
};
constexpr KindName kKinds[] = {
    {EventKind::kDeploymentStarted, "deployment_started"},
    {EventKind::kStepPassed, "step_passed"},
    {EventKind::kAnalysisFailed, "analysis_failed"},
    {EventKind::kRolledBack, "rolled_back"},
    {EventKind::kSucceeded, "succeeded"},
    {EventKind::kFailed, "failed"},
    {EventKind::kApprovalNeeded, "approval_needed"},
    {EventKind::kBackupFailed, "backup_failed"},
    {EventKind::kSloBurn, "slo_burn"},
    {EventKind::kSloBurnResolved, "slo_burn_resolved"},
};
}  // namespace

std::string_view event_kind_name(EventKind k) {
  for (const auto& kn : kKinds)
    if (kn.kind == k) return kn.name;
  return "unknown";
}

std::optional<EventKind> parse_event_kind(std::string_view name) {
  for (const auto& kn : kKinds)
    if (kn.name == name) return kn.kind;
  return std::nullopt;
}

const std::vector<EventKind>& all_event_kinds() {
  static const std::vector<EventKind> kinds = [] {
    std::vector<EventKind> v;
    for (const auto& kn : kKinds) v.push_back(kn.kind);
    return v;
  }();
  return kinds;
}

bool is_failure(EventKind k) {
  return k == EventKind::kAnalysisFailed || k == EventKind::kRolledBack ||
         k == EventKind::kFailed || k == EventKind::kBackupFailed;
}

Json event_to_json(const NotificationEvent& e) {
  Json j{{"kind", event_kind_name(e.kind)},
         {"app", e.app},
         {"env", e.env},
         {"release", e.release},
         {"deployment_id", e.deployment_id},
         {"actor", e.actor},
         {"reason", e.reason},
         {"url", e.url},
         {"time", format_rfc3339(e.time)},
         {"audit_head", e.audit_head}};
  if (!e.alert.empty()) j["alert"] = e.alert;
  return j;
}

static std::string_view verb(EventKind k) {
  switch (k) {
    case EventKind::kDeploymentStarted:
      return "deployment started";
    case EventKind::kStepPassed:
      return "step passed";
    case EventKind::kAnalysisFailed:
      return "analysis failed";
    case EventKind::kRolledBack:
      return "rolled back";
    case EventKind::kSucceeded:
      return "succeeded";
    case EventKind::kFailed:
      return "failed";
    case EventKind::kApprovalNeeded:
      return "approval needed";
    case EventKind::kBackupFailed:
      return "backup failed";
    case EventKind::kSloBurn:
      return "SLO error budget burning";
    case EventKind::kSloBurnResolved:
      return "SLO error budget burn resolved";
  }
  return "event";
}

std::string event_summary(const NotificationEvent& e) {
  if (e.app.empty() && e.env.empty()) {
    // Not about a deployment (a backup): "ferry: backup failed (reason)".
    std::string s = "ferry: " + std::string(verb(e.kind));
    if (!e.reason.empty()) s += " (" + e.reason + ")";
    return s;
  }
  std::string s = e.app;
  if (!e.release.empty()) s += " " + e.release;
  s += " \u2192 " + e.env + ": " + std::string(verb(e.kind));
  if (!e.reason.empty()) s += " (" + e.reason + ")";
  return s;
}

}  // namespace ferry
