#include "notify/payloads.h"

#include "common/crypto.h"

namespace ferry {

std::string truncate_utf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  constexpr std::string_view kEllipsis = "\u2026";
  size_t cut = max_bytes > kEllipsis.size() ? max_bytes - kEllipsis.size() : 0;
  // Back up over continuation bytes so a multi-byte character is not split.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + std::string(kEllipsis);
}

namespace {

// Slack mrkdwn treats & < > as control characters; everything else is literal enough.
std::string slack_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string_view slack_emoji(EventKind k) {
  switch (k) {
    case EventKind::kDeploymentStarted:
      return ":rocket:";
    case EventKind::kStepPassed:
      return ":white_check_mark:";
    case EventKind::kAnalysisFailed:
      return ":warning:";
    case EventKind::kRolledBack:
      return ":rewind:";
    case EventKind::kSucceeded:
      return ":tada:";
    case EventKind::kFailed:
      return ":x:";
    case EventKind::kApprovalNeeded:
      return ":raised_hand:";
    case EventKind::kBackupFailed:
      return ":floppy_disk:";
    case EventKind::kSloBurn:
      return ":fire:";
    case EventKind::kSloBurnResolved:
      return ":large_green_circle:";
  }
  return ":information_source:";
}

Json mrkdwn(const std::string& text) {
  return Json{{"type", "mrkdwn"}, {"text", text}};
}

std::string_view severity(const NotificationEvent& e) {
  const EventKind k = e.kind;
  if (k == EventKind::kSloBurn) return e.alert.ends_with("/page") ? "critical" : "warning";
  if (k == EventKind::kFailed || k == EventKind::kBackupFailed) return "critical";
  if (k == EventKind::kRolledBack || k == EventKind::kAnalysisFailed) return "error";
  return "warning";
}

}  // namespace

Json slack_payload(const NotificationEvent& e) {
  NotificationEvent cut = e;
  cut.reason = truncate_utf8(e.reason, kMaxReasonBytes);
  cut.actor = truncate_utf8(e.actor, 200);
  const std::string summary = event_summary(cut);

  // Title: the summary without the reason, linked to the dashboard when there is a URL.
  NotificationEvent no_reason = cut;
  no_reason.reason.clear();
  std::string title = slack_escape(event_summary(no_reason));
  // A URL with | or > would end Slack's <url|text> early; such a link is left out.
  if (!e.url.empty() && e.url.find_first_of("|> ") == std::string::npos)
    title = "<" + e.url + "|" + title + ">";
  Json blocks = Json::array();
  blocks.push_back({{"type", "section"},
                    {"text", mrkdwn(std::string(slack_emoji(e.kind)) + " *" + title + "*")}});
  Json fields = Json::array();
  auto field = [&](std::string_view label, const std::string& value) {
    if (!value.empty())
      fields.push_back(mrkdwn("*" + std::string(label) + "*\n" + slack_escape(value)));
  };
  field("App", cut.app);
  field("Environment", cut.env);
  field("Release", cut.release);
  field("Deployment", cut.deployment_id);
  field("By", cut.actor);
  field("Alert", cut.alert);
  field("Audit head", cut.audit_head);
  if (!fields.empty()) blocks.push_back({{"type", "section"}, {"fields", fields}});
  if (!cut.reason.empty())
    blocks.push_back(
        {{"type", "section"}, {"text", mrkdwn("*Reason*\n" + slack_escape(cut.reason))}});
  blocks.push_back(
      {{"type", "context"},
       {"elements", Json::array({mrkdwn("ferry \u00b7 " + std::string(event_kind_name(e.kind)) +
                                        " \u00b7 " + format_rfc3339(e.time))})}});
  return Json{{"text", slack_escape(summary)}, {"blocks", blocks}};
}

std::string pagerduty_dedup_key(const NotificationEvent& e) {
  // An SLO alert is its own incident, apart from the app's deployment failures.
  if (!e.alert.empty()) return "ferry/" + e.app + "/" + e.env + "/slo/" + e.alert;
  return "ferry/" + e.app + "/" + e.env;
}

Json pagerduty_payload(const NotificationEvent& e, std::string_view routing_key,
                       PagerDutyAction action, std::string_view source) {
  Json j = {{"routing_key", routing_key},
            {"dedup_key", pagerduty_dedup_key(e)},
            {"event_action", action == PagerDutyAction::kTrigger ? "trigger" : "resolve"}};
  if (action == PagerDutyAction::kResolve) return j;
  NotificationEvent cut = e;
  cut.reason = truncate_utf8(e.reason, kMaxReasonBytes);
  j["payload"] = {{"summary", truncate_utf8(event_summary(e), 1024)},
                  {"source", source},
                  {"severity", severity(e)},
                  {"timestamp", format_rfc3339(e.time)},
                  {"component", e.app},
                  {"group", e.env},
                  {"class", event_kind_name(e.kind)},
                  {"custom_details",
                   {{"app", cut.app},
                    {"env", cut.env},
                    {"release", cut.release},
                    {"deployment_id", cut.deployment_id},
                    {"actor", truncate_utf8(cut.actor, 200)},
                    {"reason", cut.reason},
                    {"audit_head", cut.audit_head},
                    {"alert", cut.alert}}}};
  j["client"] = "ferry";
  if (!e.url.empty()) {
    j["client_url"] = e.url;
    j["links"] = Json::array({{{"href", e.url}, {"text", "Deployment " + e.deployment_id}}});
  }
  return j;
}

Json webhook_payload(const NotificationEvent& e, std::string_view delivery_id) {
  NotificationEvent cut = e;
  cut.reason = truncate_utf8(e.reason, kMaxReasonBytes);
  cut.actor = truncate_utf8(e.actor, 200);
  Json j = event_to_json(cut);
  j["delivery_id"] = delivery_id;
  j["version"] = 1;
  return j;
}

std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body) {
  std::string signed_text;
  signed_text.reserve(timestamp.size() + 1 + body.size());
  signed_text.append(timestamp).append(".").append(body);
  return "sha256=" + hmac_sha256_hex(secret, signed_text);
}

}  // namespace ferry
