// Sink: one configured notification destination (a NotificationSpec with its URL and
// secrets resolved from the environment). It decides whether an event goes to it and
// with which body, and builds each attempt's HTTP request.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "core/spec.h"
#include "notify/event.h"
#include "notify/http_post.h"

namespace ferry {

// Reads an environment variable; nullopt when unset. Injected so tests need no setenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();

inline constexpr std::string_view kPagerDutyEventsUrl = "https://events.pagerduty.com/v2/enqueue";

// What a sink sends for one event: the body, fixed when the event is queued.
struct Prepared {
  std::string body;
  std::string delivery_id;
  std::string action;  // pagerduty: "trigger" or "resolve"; empty otherwise
};

class Sink {
  struct Token {};  // only create() makes a Sink

 public:
  explicit Sink(Token) {}
  enum class Type { kSlack, kPagerDuty, kWebhook };

  // Resolves url / url_env, routing_key_env and secret_env, and checks `events`. An
  // error names the notification and the variable or field, never a secret's value.
  // `source` is PagerDuty's payload.source (the server's host name, say).
  static Result<std::unique_ptr<Sink>> create(const NotificationSpec& spec, const EnvLookup& env,
                                              std::string source = "ferry");

  const std::string& name() const { return name_; }
  Type type() const { return type_; }
  std::string_view type_name() const;
  // The URL as it may be shown: scheme://host/****.
  const std::string& redacted_url() const { return redacted_url_; }
  // The secret values (URL, routing key, HMAC key) to register with a Masker.
  std::vector<std::string> secrets() const;

  // Whether the `events` filter lets this kind through (empty filter: all kinds).
  bool wants(EventKind k) const;
  // The body for `e`, or nullopt when this sink sends nothing for it. Called in the
  // order events happen: PagerDuty keeps which app/env incidents it opened, so it
  // triggers on a failure (analysis_failed, rolled_back, failed) and resolves on the
  // next success of the same app/env (also after a restart, when it does not know;
  // a resolve of nothing open is ignored by PagerDuty); an SLO burn alert triggers its
  // own incident and its slo_burn_resolved resolves it. Not thread-safe.
  std::optional<Prepared> prepare(const NotificationEvent& e);
  // The request for one attempt; webhooks are signed again with `now` each time, so a
  // receiver's replay window holds for retries too.
  OutboundRequest request(const Prepared& p, const NotificationEvent& e, SystemTime now) const;

 private:
  std::string name_;
  Type type_ = Type::kWebhook;
  std::string url_;
  std::string redacted_url_;
  std::string routing_key_;
  std::string secret_;
  std::string source_;
  std::set<EventKind> events_;        // empty: all
  std::map<std::string, bool> open_;  // pagerduty: dedup_key → incident open
};

}  // namespace ferry
