// The bodies each kind of sink receives. Pure functions of the event, so each field can
// be tested without a network.
#pragma once

#include <string>
#include <string_view>

#include "common/json.h"
#include "notify/event.h"

namespace ferry {

// Free text (reason, actor) is cut to this many bytes in any payload, on a UTF-8
// character boundary, with "…" appended.
inline constexpr size_t kMaxReasonBytes = 2000;
std::string truncate_utf8(std::string_view s, size_t max_bytes);

// Slack incoming webhook: {"text": fallback, "blocks": [section, fields, reason, context]}.
// User text is escaped for mrkdwn (& < >); the dashboard link is the title's link.
Json slack_payload(const NotificationEvent& e);

enum class PagerDutyAction { kTrigger, kResolve };
// "ferry/<app>/<env>": one incident per app and environment, so a later success
// resolves what a failure opened. An SLO burn alert: "ferry/<app>/<env>/slo/<alert>"
// (its own incident, resolved by its slo_burn_resolved).
std::string pagerduty_dedup_key(const NotificationEvent& e);
// PagerDuty Events API v2 body. A trigger carries payload.summary (≤ 1024 bytes),
// source, severity (failed and an SLO page: critical, rolled_back / analysis_failed:
// error, else warning), timestamp, component (app), group (env), class (kind), custom_details and
// a link to the dashboard; a resolve carries only routing_key, action and dedup_key.
Json pagerduty_payload(const NotificationEvent& e, std::string_view routing_key,
                       PagerDutyAction action, std::string_view source);

// Generic webhook body: event_to_json(e) plus "delivery_id" (the same for every attempt
// of this delivery, for receivers to drop repeats) and "version": 1.
Json webhook_payload(const NotificationEvent& e, std::string_view delivery_id);
// "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body): the X-Ferry-Signature
// header, with timestamp the X-Ferry-Timestamp header (Unix seconds).
std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body);

}  // namespace ferry
