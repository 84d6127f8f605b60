#include "notify/sink.h"

#include <cstdlib>

#include "common/crypto.h"
#include "notify/payloads.h"

namespace ferry {

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

namespace {

std::string dump(const Json& j) {
  // Replace rather than throw on invalid UTF-8 that came in through an event's text.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The value of environment variable `var` for `field` of notification `who`.
Result<std::string> from_env(const EnvLookup& env, const std::string& who, const std::string& field,
                             const std::string& var) {
  auto v = env(var);
  if (!v || v->empty())
    return Status(failed_precondition("notification \"" + who + "\": environment variable " + var +
                                      " (" + field + ") is not set"));
  return *v;
}

}  // namespace

Result<std::unique_ptr<Sink>> Sink::create(const NotificationSpec& spec, const EnvLookup& env,
                                           std::string source) {
  auto s = std::make_unique<Sink>(Token{});
  s->name_ = spec.name;
  s->source_ = std::move(source);
  const std::string who = spec.name;
  if (spec.type == "slack")
    s->type_ = Type::kSlack;
  else if (spec.type == "pagerduty")
    s->type_ = Type::kPagerDuty;
  else if (spec.type == "webhook")
    s->type_ = Type::kWebhook;
  else
    return Status(invalid_argument("notification \"" + who + "\": type '" + spec.type +
                                   "' is not one of slack, pagerduty, webhook"));

  for (const auto& name : spec.events) {
    auto k = parse_event_kind(name);
    if (!k)
      return Status(invalid_argument(
          "notification \"" + who + "\": events: '" + name +
          "' is not one of deployment_started, step_passed, analysis_failed, rolled_back, "
          "succeeded, failed, approval_needed"));
    s->events_.insert(*k);
  }

  if (!spec.url_env.empty()) {
    auto v = from_env(env, who, "url_env", spec.url_env);
    if (!v.ok()) return v.status();
    s->url_ = *v;
  } else if (!spec.url.empty()) {
    s->url_ = spec.url;
  } else if (s->type_ == Type::kPagerDuty) {
    s->url_ = std::string(kPagerDutyEventsUrl);
  } else {
    return Status(invalid_argument("notification \"" + who + "\": needs url or url_env"));
  }
  if (Status st = check_url(s->url_); !st.ok()) {
    const std::string where = spec.url_env.empty() ? "url" : "url_env " + spec.url_env;
    return Status(invalid_argument("notification \"" + who + "\": " + where + ": " + st.message()));
  }
  s->redacted_url_ = redact_url(s->url_);

  if (s->type_ == Type::kPagerDuty) {
    if (spec.routing_key_env.empty())
      return Status(invalid_argument("notification \"" + who +
                                     "\": a pagerduty notification needs routing_key_env"));
    auto v = from_env(env, who, "routing_key_env", spec.routing_key_env);
    if (!v.ok()) return v.status();
    s->routing_key_ = *v;
  }
  if (!spec.secret_env.empty()) {
    auto v = from_env(env, who, "secret_env", spec.secret_env);
    if (!v.ok()) return v.status();
    s->secret_ = *v;
  }
  return s;
}

std::string_view Sink::type_name() const {
  switch (type_) {
    case Type::kSlack:
      return "slack";
    case Type::kPagerDuty:
      return "pagerduty";
    case Type::kWebhook:
      return "webhook";
  }
  return "webhook";
}

std::vector<std::string> Sink::secrets() const {
  std::vector<std::string> v;
  // A Slack or webhook URL is a credential; PagerDuty's public endpoint is not.
  if (url_ != kPagerDutyEventsUrl) v.push_back(url_);
  if (!routing_key_.empty()) v.push_back(routing_key_);
  if (!secret_.empty()) v.push_back(secret_);
  return v;
}

bool Sink::wants(EventKind k) const {
  // `slo_burn` in the filter lets an alert's resolve through with it.
  if (k == EventKind::kSloBurnResolved) k = EventKind::kSloBurn;
  return events_.empty() || events_.count(k) > 0;
}

std::optional<Prepared> Sink::prepare(const NotificationEvent& e) {
  Prepared p;
  p.delivery_id = random_id("ntf_", 8);
  switch (type_) {
    case Type::kSlack:
      if (!wants(e.kind)) return std::nullopt;
      p.body = dump(slack_payload(e));
      return p;
    case Type::kWebhook:
      if (!wants(e.kind)) return std::nullopt;
      p.body = dump(webhook_payload(e, p.delivery_id));
      return p;
    case Type::kPagerDuty: {
      const std::string key = pagerduty_dedup_key(e);
      if (is_failure(e.kind)) {
        if (!wants(e.kind)) return std::nullopt;
        open_[key] = true;
        p.action = "trigger";
        p.body = dump(pagerduty_payload(e, routing_key_, PagerDutyAction::kTrigger, source_));
        return p;
      }
      if (e.kind == EventKind::kSloBurn || e.kind == EventKind::kSloBurnResolved) {
        // An SLO alert's incident: triggered when it fires, resolved when it stops.
        if (!wants(e.kind)) return std::nullopt;
        const bool trigger = e.kind == EventKind::kSloBurn;
        auto it = open_.find(key);
        if (!trigger && it != open_.end() && !it->second) return std::nullopt;
        open_[key] = trigger;
        p.action = trigger ? "trigger" : "resolve";
        p.body = dump(pagerduty_payload(
            e, routing_key_, trigger ? PagerDutyAction::kTrigger : PagerDutyAction::kResolve,
            source_));
        return p;
      }
      if (e.kind == EventKind::kSucceeded) {
        // Resolving belongs to triggering: it is sent even when `events` leaves out
        // succeeded, but only when an incident may be open.
        auto it = open_.find(key);
        if (it != open_.end() && !it->second) return std::nullopt;
        open_[key] = false;
        p.action = "resolve";
        p.body = dump(pagerduty_payload(e, routing_key_, PagerDutyAction::kResolve, source_));
        return p;
      }
      return std::nullopt;  // a pager hears only of failures and their end
    }
  }
  return std::nullopt;
}

OutboundRequest Sink::request(const Prepared& p, const NotificationEvent& e, SystemTime now) const {
  OutboundRequest r;
  r.url = url_;
  r.body = p.body;
  r.headers.emplace_back("Content-Type", "application/json");
  if (type_ == Type::kWebhook) {
    const std::string ts = std::to_string(to_unix_ms(now) / 1000);
    r.headers.emplace_back("X-Ferry-Event", std::string(event_kind_name(e.kind)));
    r.headers.emplace_back("X-Ferry-Delivery", p.delivery_id);
    r.headers.emplace_back("X-Ferry-Timestamp", ts);
    if (!secret_.empty())
      r.headers.emplace_back("X-Ferry-Signature", webhook_signature(secret_, ts, p.body));
  }
  return r;
}

}  // namespace ferry
