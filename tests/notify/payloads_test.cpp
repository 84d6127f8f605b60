#include "notify/payloads.h"

#include <gtest/gtest.h>

#include "notify/http_post.h"
#include "notify/sink.h"

namespace ferry {
namespace {

NotificationEvent sample(EventKind kind) {
  NotificationEvent e;
  e.kind = kind;
  e.app = "web";
  e.env = "production";
  e.release = "v42";
  e.deployment_id = "dep_0123";
  e.actor = "alice";
  e.reason = "error rate 7% > 1% <script>&";
  e.url = "https://ferry.example.com/deployments/dep_0123";
  e.time = from_unix_ms(1'700'000'000'123);
  return e;
}

TEST(EventKinds, NamesRoundTrip) {
  EXPECT_EQ(all_event_kinds().size(), 10u);
  for (EventKind k : all_event_kinds()) EXPECT_EQ(parse_event_kind(event_kind_name(k)), k);
  EXPECT_EQ(parse_event_kind("rolled_back"), EventKind::kRolledBack);
  EXPECT_FALSE(parse_event_kind("rollback"));
  EXPECT_TRUE(is_failure(EventKind::kFailed));
  EXPECT_FALSE(is_failure(EventKind::kSucceeded));
  EXPECT_TRUE(is_failure(EventKind::kBackupFailed));
  // Not about a deployment: the summary does not pretend there is an app.
  NotificationEvent b;
  b.kind = EventKind::kBackupFailed;
  b.reason = "store file data/ferry.db does not exist";
  EXPECT_EQ(event_summary(b), "ferry: backup failed (store file data/ferry.db does not exist)");
}

TEST(Payloads, SlackHasTextBlocksAndEscapes) {
  Json j = slack_payload(sample(EventKind::kRolledBack));
  const std::string text = j.at("text");
  EXPECT_NE(text.find("web v42"), std::string::npos) << text;
  EXPECT_NE(text.find("production"), std::string::npos);
  EXPECT_NE(text.find("rolled back"), std::string::npos);
  EXPECT_NE(text.find("&lt;script&gt;&amp;"), std::string::npos) << text;
  EXPECT_EQ(text.find("<script>"), std::string::npos);
  ASSERT_TRUE(j.at("blocks").is_array());
  const Json& blocks = j.at("blocks");
  ASSERT_GE(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].at("type"), "section");
  const std::string title = blocks[0].at("text").at("text");
  EXPECT_NE(title.find("<https://ferry.example.com/deployments/dep_0123|"), std::string::npos)
      << title;
  EXPECT_NE(title.find(":rewind:"), std::string::npos);
  const Json& fields = blocks[1].at("fields");
  std::string all;
  for (const auto& f : fields) {
    EXPECT_EQ(f.at("type"), "mrkdwn");
    all += f.at("text").get<std::string>() + "|";
  }
  for (const char* want : {"*App*\nweb", "*Environment*\nproduction", "*Release*\nv42",
                           "*Deployment*\ndep_0123", "*By*\nalice"})
    EXPECT_NE(all.find(want), std::string::npos) << want;
  EXPECT_EQ(blocks.back().at("type"), "context");
}

TEST(Payloads, SlackLeavesOutALinkThatWouldBreakMarkup) {
  NotificationEvent e = sample(EventKind::kSucceeded);
  e.url = "https://x/|evil>";
  const std::string title = slack_payload(e).at("blocks")[0].at("text").at("text");
  EXPECT_EQ(title.find("https://x"), std::string::npos) << title;
}

TEST(Payloads, PagerDutyTrigger) {
  Json j = pagerduty_payload(sample(EventKind::kFailed), "R0UTING", PagerDutyAction::kTrigger,
                             "ferry-host-1");
  EXPECT_EQ(j.at("routing_key"), "R0UTING");
  EXPECT_EQ(j.at("event_action"), "trigger");
  EXPECT_EQ(j.at("dedup_key"), "ferry/web/production");
  const Json& p = j.at("payload");
  EXPECT_EQ(p.at("source"), "ferry-host-1");
  EXPECT_EQ(p.at("severity"), "critical");
  EXPECT_EQ(p.at("component"), "web");
  EXPECT_EQ(p.at("group"), "production");
  EXPECT_EQ(p.at("class"), "failed");
  EXPECT_EQ(p.at("timestamp"), "2023-11-14T22:13:20.123Z");
  EXPECT_NE(p.at("summary").get<std::string>().find("web v42"), std::string::npos);
  EXPECT_EQ(p.at("custom_details").at("release"), "v42");
  EXPECT_EQ(p.at("custom_details").at("deployment_id"), "dep_0123");
  EXPECT_EQ(j.at("links")[0].at("href"), "https://ferry.example.com/deployments/dep_0123");
  EXPECT_EQ(pagerduty_payload(sample(EventKind::kRolledBack), "k", PagerDutyAction::kTrigger, "s")
                .at("payload")
                .at("severity"),
            "error");
}

TEST(Payloads, PagerDutyResolveIsMinimalAndSummaryBounded) {
  Json r =
      pagerduty_payload(sample(EventKind::kSucceeded), "R0UTING", PagerDutyAction::kResolve, "h");
  EXPECT_EQ(r.at("event_action"), "resolve");
  EXPECT_EQ(r.at("dedup_key"), "ferry/web/production");
  EXPECT_FALSE(r.contains("payload"));
  NotificationEvent e = sample(EventKind::kFailed);
  e.reason = std::string(5000, 'x');
  Json t = pagerduty_payload(e, "k", PagerDutyAction::kTrigger, "h");
  EXPECT_LE(t.at("payload").at("summary").get<std::string>().size(), 1024u);
  EXPECT_LE(t.at("payload").at("custom_details").at("reason").get<std::string>().size(),
            kMaxReasonBytes);
}

TEST(Payloads, WebhookBodyAndSignature) {
  Json j = webhook_payload(sample(EventKind::kApprovalNeeded), "ntf_1");
  EXPECT_EQ(j.at("kind"), "approval_needed");
  EXPECT_EQ(j.at("app"), "web");
  EXPECT_EQ(j.at("env"), "production");
  EXPECT_EQ(j.at("release"), "v42");
  EXPECT_EQ(j.at("deployment_id"), "dep_0123");
  EXPECT_EQ(j.at("actor"), "alice");
  EXPECT_EQ(j.at("reason"), "error rate 7% > 1% <script>&");
  EXPECT_EQ(j.at("time"), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j.at("delivery_id"), "ntf_1");
  EXPECT_EQ(j.at("version"), 1);
  // Known answer computed outside ferry (Python's hmac module).
  EXPECT_EQ(webhook_signature("s3cret", "1700000000", R"({"a":1})"),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
}

TEST(Payloads, TruncateUtf8KeepsCharactersWhole) {
  EXPECT_EQ(truncate_utf8("short", 10), "short");
  const std::string e_acute = "\xC3\xA9";
  std::string s;
  for (int i = 0; i < 10; ++i) s += e_acute;
  const std::string cut = truncate_utf8(s, 8);  // 3 bytes for "…" leave 5: two é
  EXPECT_EQ(cut, e_acute + e_acute + "\u2026");
  EXPECT_LE(cut.size(), 8u);
}

TEST(Urls, CheckAndRedact) {
  EXPECT_TRUE(check_url("https://hooks.slack.com/services/T/B/X").ok());
  EXPECT_TRUE(check_url("http://127.0.0.1:8080/hook").ok());
  EXPECT_FALSE(check_url("ftp://host/x").ok());
  EXPECT_FALSE(check_url("https:///x").ok());
  EXPECT_FALSE(check_url("https://host/a b").ok());
  EXPECT_FALSE(check_url("file:///etc/passwd").ok());
  EXPECT_FALSE(check_url("https://h/" + std::string(3000, 'a')).ok());
  Status st = check_url("gopher://secret-token-here");
  EXPECT_EQ(st.message().find("secret-token-here"), std::string::npos);
  EXPECT_EQ(redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/****");
  EXPECT_EQ(redact_url("https://user:pw@example.com:8443/x?token=abc"),
            "https://example.com:8443/****");
  EXPECT_EQ(redact_url("not a url"), "****");
}

EnvLookup env_from(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Sinks, CreateResolvesEnvAndNamesWhatIsMissing) {
  NotificationSpec slack{"team", "slack", "", "SLACK_URL", "", "", {}};
  auto missing = Sink::create(slack, env_from({}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("SLACK_URL"), std::string::npos);
  EXPECT_NE(missing.status().message().find("\"team\""), std::string::npos);

  auto bad = Sink::create(slack, env_from({{"SLACK_URL", "hooks.slack.com/services/SECRETPATH"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("SECRETPATH"), std::string::npos) << bad.status().message();

  auto ok =
      Sink::create(slack, env_from({{"SLACK_URL", "https://hooks.slack.com/services/T/B/SECRET"}}));
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)->redacted_url(), "https://hooks.slack.com/****");
  EXPECT_EQ((*ok)->secrets(),
            std::vector<std::string>{"https://hooks.slack.com/services/T/B/SECRET"});

  NotificationSpec events{"e", "webhook", "https://x.example/h", "", "", "", {"rollback"}};
  auto unknown = Sink::create(events, env_from({}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'rollback'"), std::string::npos);

  NotificationSpec pd{"pager", "pagerduty", "", "", "PD_KEY", "", {}};
  EXPECT_FALSE(Sink::create(pd, env_from({})).ok());
  auto pd_ok = Sink::create(pd, env_from({{"PD_KEY", "abcdef"}}));
  ASSERT_TRUE(pd_ok.ok());
  EXPECT_EQ((*pd_ok)->redacted_url(), "https://events.pagerduty.com/****");

  NotificationSpec hook{"h", "webhook", "https://x.example/h", "", "", "HOOK_SECRET", {}};
  EXPECT_FALSE(Sink::create(hook, env_from({})).ok());
}

TEST(Sinks, PagerDutyTriggersThenResolvesOnce) {
  NotificationSpec pd{"pager", "pagerduty", "", "", "PD_KEY", "", {}};
  auto s = Sink::create(pd, env_from({{"PD_KEY", "abcdef"}}));
  ASSERT_TRUE(s.ok());
  Sink& sink = **s;
  EXPECT_FALSE(sink.prepare(sample(EventKind::kDeploymentStarted)));
  EXPECT_FALSE(sink.prepare(sample(EventKind::kStepPassed)));
  auto t = sink.prepare(sample(EventKind::kRolledBack));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->action, "trigger");
  auto r = sink.prepare(sample(EventKind::kSucceeded));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->action, "resolve");
  EXPECT_EQ(parse_json(t->body)->at("dedup_key"), parse_json(r->body)->at("dedup_key"));
  EXPECT_FALSE(sink.prepare(sample(EventKind::kSucceeded)));  // nothing open any more
  // Another environment is another incident; unknown state resolves (after a restart).
  NotificationEvent staging = sample(EventKind::kSucceeded);
  staging.env = "staging";
  auto r2 = sink.prepare(staging);
  ASSERT_TRUE(r2);
  EXPECT_EQ(parse_json(r2->body)->at("dedup_key"), "ferry/web/staging");
}

TEST(Sinks, EventFilter) {
  NotificationSpec hook{"h", "webhook", "https://x.example/h", "", "", "", {"failed", "succeeded"}};
  auto s = Sink::create(hook, env_from({}));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)->wants(EventKind::kFailed));
  EXPECT_FALSE((*s)->wants(EventKind::kStepPassed));
  EXPECT_FALSE((*s)->prepare(sample(EventKind::kStepPassed)));
  EXPECT_TRUE((*s)->prepare(sample(EventKind::kSucceeded)));
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// Issue 13, item 4: every notification carries the audit chain's head, so each receiver
// holds a copy to check the log against later.
TEST(Payloads, EveryKindCarriesTheAuditHead) {
  NotificationEvent e;
  e.kind = EventKind::kSucceeded;
  e.app = "web";
  e.env = "production";
  e.release = "v42";
  e.deployment_id = "dep_0123";
  e.time = from_unix_ms(1'700'000'000'123);
  e.audit_head = "17:" + std::string(64, 'a');
  EXPECT_EQ(webhook_payload(e, "del-1").value("audit_head", ""), e.audit_head);
  EXPECT_EQ(
      pagerduty_payload(e, "key", PagerDutyAction::kTrigger, "ferry")["payload"]["custom_details"]
          .value("audit_head", ""),
      e.audit_head);
  EXPECT_NE(slack_payload(e).dump().find(e.audit_head), std::string::npos);
}

TEST(Payloads, SloBurnIsItsOwnIncidentWithThePagesSeverity) {
  NotificationEvent e;
  e.kind = EventKind::kSloBurn;
  e.app = "web";
  e.env = "production";
  e.actor = "ferry";
  e.reason = "the availability SLO's error budget burns at 20.0x over 1h";
  e.alert = "availability/page";
  e.time = from_unix_ms(1'700'000'000'123);
  EXPECT_EQ(pagerduty_dedup_key(e), "ferry/web/production/slo/availability/page");
  Json t = pagerduty_payload(e, "key", PagerDutyAction::kTrigger, "ferry");
  EXPECT_EQ(t["payload"]["severity"], "critical");
  EXPECT_EQ(t["payload"]["class"], "slo_burn");
  EXPECT_EQ(t["payload"]["custom_details"]["alert"], "availability/page");
  e.alert = "latency/ticket";
  EXPECT_EQ(pagerduty_payload(e, "key", PagerDutyAction::kTrigger, "ferry")["payload"]["severity"],
            "warning");
  EXPECT_EQ(webhook_payload(e, "del-1").value("alert", ""), "latency/ticket");
  EXPECT_EQ(webhook_payload(e, "del-1").value("kind", ""), "slo_burn");
  const std::string slack = slack_payload(e).dump();
  EXPECT_NE(slack.find("SLO error budget burning"), std::string::npos) << slack;
  EXPECT_NE(slack.find("latency/ticket"), std::string::npos) << slack;
  e.kind = EventKind::kSloBurnResolved;
  EXPECT_NE(event_summary(e).find("SLO error budget burn resolved"), std::string::npos);
  // A deployment event keeps its key and carries no alert.
  NotificationEvent d = sample(EventKind::kRolledBack);
  EXPECT_EQ(pagerduty_dedup_key(d), "ferry/web/production");
  EXPECT_FALSE(webhook_payload(d, "del-2").contains("alert"));
}

}  // namespace
}  // namespace ferry
