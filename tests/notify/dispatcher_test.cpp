#include "notify/dispatcher.h"

#include <gtest/gtest.h>

#include "common/crypto.h"
#include "notify/receiver.h"

namespace ferry {
namespace {

using testing::Deliveries;
using testing::Receiver;

NotificationEvent event(EventKind kind, std::string env = "production") {
  NotificationEvent e;
  e.kind = kind;
  e.app = "web";
  e.env = std::move(env);
  e.release = "v7";
  e.deployment_id = "dep_42";
  e.actor = "bob";
  e.reason = kind == EventKind::kSucceeded ? "" : "p95 latency 900ms > 300ms";
  e.url = "http://127.0.0.1:7070/deployments/dep_42";
  e.time = from_unix_ms(1'750'000'000'000);
  return e;
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

DispatcherOptions fast(Deliveries& d, std::map<std::string, std::string> vars = {}) {
  DispatcherOptions o;
  o.backoff_base = Duration(5);
  o.backoff_max = Duration(50);
  o.jitter = false;
  o.http.timeout_ms = 5000;
  o.env = env_of(std::move(vars));
  o.on_delivery = d.callback();
  o.source = "ferry-test";
  return o;
}

std::unique_ptr<Dispatcher> make(const std::vector<NotificationSpec>& specs, DispatcherOptions o) {
  auto d = Dispatcher::create(specs, std::move(o));
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  return d.ok() ? std::move(*d) : nullptr;
}

TEST(Dispatcher, SlackPayloadArrives) {
  Receiver rx;
  Deliveries got;
  const std::string url = rx.url("/services/T000/B000/SLACKSECRET");
  auto d = make({{"team", "slack", "", "SLACK_URL", "", "", {}}}, fast(got, {{"SLACK_URL", url}}));
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kRolledBack));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(recs[0].ok) << recs[0].error;
  EXPECT_EQ(recs[0].attempt, 1);
  EXPECT_EQ(recs[0].http_status, 200);
  EXPECT_EQ(recs[0].sink, "team");
  EXPECT_EQ(recs[0].sink_type, "slack");
  EXPECT_EQ(recs[0].result(), "delivered");
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/services/T000/B000/SLACKSECRET");
  EXPECT_EQ(reqs[0].header("content-type"), "application/json");
  auto body = parse_json(reqs[0].body);
  ASSERT_TRUE(body.ok());
  EXPECT_NE(body->at("text").get<std::string>().find("rolled back"), std::string::npos);
  EXPECT_EQ(body->at("blocks")[0].at("type"), "section");
}

TEST(Dispatcher, WebhookIsSignedAndVerifies) {
  Receiver rx;
  Deliveries got;
  FakeClock clock(from_unix_ms(1'760'000'000'000));
  DispatcherOptions o = fast(got, {{"HOOK_SECRET", "whsec_test_key"}});
  o.clock = &clock;
  auto d = make({{"audit", "webhook", rx.url("/ferry"), "", "", "HOOK_SECRET", {}}}, o);
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kApprovalNeeded));
  ASSERT_EQ(got.wait_final(1).size(), 1u);
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const HttpRequest& r = reqs[0];
  EXPECT_EQ(r.header("x-ferry-timestamp"), "1760000000");
  EXPECT_EQ(r.header("x-ferry-event"), "approval_needed");
  // What a receiver does: HMAC-SHA256(secret, timestamp + "." + raw body), compared in
  // constant time with the hex after "sha256=".
  const std::string sig = r.header("x-ferry-signature");
  ASSERT_EQ(sig.rfind("sha256=", 0), 0u) << sig;
  const std::string expect =
      hmac_sha256_hex("whsec_test_key", r.header("x-ferry-timestamp") + "." + r.body);
  EXPECT_TRUE(constant_time_equal(sig.substr(7), expect));
  EXPECT_NE(hmac_sha256_hex("other key", r.header("x-ferry-timestamp") + "." + r.body),
            sig.substr(7));
  auto body = parse_json(r.body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("kind"), "approval_needed");
  EXPECT_EQ(body->at("app"), "web");
  EXPECT_EQ(body->at("env"), "production");
  EXPECT_EQ(body->at("release"), "v7");
  EXPECT_EQ(body->at("deployment_id"), "dep_42");
  EXPECT_EQ(body->at("actor"), "bob");
  EXPECT_EQ(body->at("url"), "http://127.0.0.1:7070/deployments/dep_42");
  EXPECT_EQ(body->at("delivery_id"), r.header("x-ferry-delivery"));
}

TEST(Dispatcher, PagerDutyTriggerThenResolveWithTheSameDedupKey) {
  Receiver rx;
  Deliveries got;
  auto d = make({{"pager", "pagerduty", rx.url("/v2/enqueue"), "", "PD_KEY", "", {}}},
                fast(got, {{"PD_KEY", "R0UTINGKEY"}}));
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kDeploymentStarted));  // not for a pager
  d->notify(event(EventKind::kAnalysisFailed));
  d->notify(event(EventKind::kSucceeded));
  auto recs = got.wait_final(2);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].action, "trigger");
  EXPECT_EQ(recs[1].action, "resolve");
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 2u);
  auto trigger = parse_json(reqs[0].body), resolve = parse_json(reqs[1].body);
  ASSERT_TRUE(trigger.ok() && resolve.ok());
  EXPECT_EQ(trigger->at("event_action"), "trigger");
  EXPECT_EQ(trigger->at("routing_key"), "R0UTINGKEY");
  EXPECT_EQ(trigger->at("payload").at("source"), "ferry-test");
  EXPECT_EQ(trigger->at("payload").at("severity"), "error");
  EXPECT_EQ(trigger->at("payload").at("custom_details").at("reason"), "p95 latency 900ms > 300ms");
  EXPECT_EQ(resolve->at("event_action"), "resolve");
  EXPECT_EQ(trigger->at("dedup_key"), resolve->at("dedup_key"));
  EXPECT_EQ(resolve->at("dedup_key"), "ferry/web/production");
}

TEST(Dispatcher, SloBurnTriggersItsOwnIncidentAndOnlyNotificationsThatTakeItHearOfIt) {
  Receiver rx;
  Deliveries got;
  auto d = make({{"pager", "pagerduty", rx.url("/slo"), "", "PD_KEY", "", {"slo_burn"}},
                 {"oncall", "pagerduty", rx.url("/deploys"), "", "PD_KEY", "", {"failed"}}},
                fast(got, {{"PD_KEY", "R0UTINGKEY"}}));
  ASSERT_TRUE(d);
  NotificationEvent burn = event(EventKind::kSloBurn);
  burn.release.clear();
  burn.deployment_id.clear();
  burn.alert = "availability/page";
  d->notify(burn);
  d->notify(event(EventKind::kFailed));  // a deployment's incident, apart
  burn.kind = EventKind::kSloBurnResolved;
  d->notify(burn);
  d->notify(burn);  // a second resolve of a resolved incident is not sent
  auto recs = got.wait_final(3);
  ASSERT_TRUE(d->wait_idle(Duration(20'000)));
  std::vector<Json> slo, deploys;
  for (const auto& r : rx.requests()) {
    auto j = parse_json(r.body);
    ASSERT_TRUE(j.ok());
    (r.target == "/slo" ? slo : deploys).push_back(*j);
  }
  ASSERT_EQ(slo.size(), 2u);
  EXPECT_EQ(slo[0].at("event_action"), "trigger");
  EXPECT_EQ(slo[0].at("dedup_key"), "ferry/web/production/slo/availability/page");
  EXPECT_EQ(slo[0].at("payload").at("severity"), "critical");
  EXPECT_EQ(slo[1].at("event_action"), "resolve");
  EXPECT_EQ(slo[1].at("dedup_key"), slo[0].at("dedup_key"));
  // The notification that takes only `failed` heard of the failure, not of the SLO.
  ASSERT_EQ(deploys.size(), 1u);
  EXPECT_EQ(deploys[0].at("dedup_key"), "ferry/web/production");
}

TEST(Dispatcher, RetriesAfterServerErrorsThenSucceeds) {
  Receiver rx;
  rx.script({500, 502, 200});
  Deliveries got;
  auto d =
      make({{"audit", "webhook", rx.url("/h"), "", "", "S", {}}}, fast(got, {{"S", "secret-key"}}));
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kFailed));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].attempt, 1);
  EXPECT_EQ(recs[0].http_status, 500);
  EXPECT_FALSE(recs[0].final);
  EXPECT_EQ(recs[0].result(), "retrying");
  EXPECT_NE(recs[0].error.find("HTTP 500"), std::string::npos);
  EXPECT_EQ(recs[1].http_status, 502);
  EXPECT_TRUE(recs[2].ok);
  EXPECT_TRUE(recs[2].final);
  EXPECT_EQ(recs[2].attempt, 3);
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 3u);
  // One delivery: the same id and body each time, each attempt signed (and verifiable).
  for (const auto& r : reqs) {
    EXPECT_EQ(r.header("x-ferry-delivery"), reqs[0].header("x-ferry-delivery"));
    EXPECT_EQ(r.body, reqs[0].body);
    EXPECT_EQ(
        r.header("x-ferry-signature"),
        "sha256=" + hmac_sha256_hex("secret-key", r.header("x-ferry-timestamp") + "." + r.body));
  }
}

TEST(Dispatcher, GivesUpAfterMaxAttempts) {
  Receiver rx;
  rx.always(503);
  Deliveries got;
  DispatcherOptions o = fast(got);
  o.max_attempts = 3;
  auto d = make({{"audit", "webhook", rx.url("/h"), "", "", "", {}}}, o);
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kFailed));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_TRUE(recs.back().final);
  EXPECT_FALSE(recs.back().ok);
  EXPECT_EQ(recs.back().attempt, 3);
  EXPECT_EQ(recs.back().http_status, 503);
  EXPECT_EQ(recs.back().result(), "failed");
  EXPECT_TRUE(d->wait_idle(Duration(5000)));
  EXPECT_EQ(rx.requests().size(), 3u);
}

TEST(Dispatcher, ClientErrorsAreNotRetried) {
  Receiver rx;
  rx.script({404});
  Deliveries got;
  auto d = make({{"audit", "webhook", rx.url("/gone"), "", "", "", {}}}, fast(got));
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kFailed));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(recs[0].final);
  EXPECT_EQ(recs[0].http_status, 404);
  EXPECT_NE(recs[0].error.find("upstream says no"), std::string::npos) << recs[0].error;
}

TEST(Dispatcher, EventFilterIsHonoured) {
  Receiver rx;
  Deliveries got;
  auto d = make({{"only-failures", "webhook", rx.url("/f"), "", "", "", {"failed", "rolled_back"}},
                 {"everything", "webhook", rx.url("/all"), "", "", "", {}}},
                fast(got));
  ASSERT_TRUE(d);
  for (EventKind k : all_event_kinds()) d->notify(event(k));
  auto recs = got.wait_final(7 + 2);
  EXPECT_EQ(recs.size(), 9u);
  std::vector<std::string> filtered;
  size_t all = 0;
  for (const auto& r : rx.requests()) {
    if (r.path == "/f") filtered.push_back(parse_json(r.body)->at("kind"));
    if (r.path == "/all") ++all;
  }
  EXPECT_EQ(filtered, (std::vector<std::string>{"rolled_back", "failed"}));
  EXPECT_EQ(all, 7u);
}

TEST(Dispatcher, TransportErrorsRetryAndNeverShowTheSecretPath) {
  uint16_t closed_port;
  {
    Receiver gone;  // bind a port, then free it: nothing listens there afterwards
    closed_port = static_cast<uint16_t>(std::stoi(gone.url("").substr(17)));
  }
  Deliveries got;
  DispatcherOptions o = fast(got);
  o.max_attempts = 2;
  const std::string url =
      "http://127.0.0.1:" + std::to_string(closed_port) + "/services/T/B/TOPSECRETPATH";
  auto d = make({{"team", "slack", url, "", "", "", {}}}, o);
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kFailed));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 2u);
  for (const auto& r : recs) {
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.http_status, 0);
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(r.error.find("TOPSECRETPATH"), std::string::npos) << r.error;
  }
  EXPECT_TRUE(recs[1].final);
}

TEST(Dispatcher, TimeoutIsAFailedAttempt) {
  Receiver rx;
  rx.delay(1500);
  Deliveries got;
  DispatcherOptions o = fast(got);
  o.max_attempts = 1;
  o.http.timeout_ms = 200;
  auto d = make({{"slow", "webhook", rx.url("/slow"), "", "", "", {}}}, o);
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kFailed));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_FALSE(recs[0].ok);
  EXPECT_TRUE(recs[0].final);
  EXPECT_NE(recs[0].error.find("POST http://127.0.0.1:"), std::string::npos) << recs[0].error;
}

TEST(Dispatcher, LongAnswerIsCutAndStillCounts) {
  Receiver rx;
  rx.big_body(1 << 20);
  Deliveries got;
  DispatcherOptions o = fast(got);
  o.http.max_response_bytes = 1024;
  auto d = make({{"h", "webhook", rx.url("/big"), "", "", "", {}}}, o);
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kSucceeded));
  auto recs = got.wait_final(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(recs[0].ok) << recs[0].error;
}

TEST(Dispatcher, OneSinkBackingOffDoesNotHoldUpAnother) {
  Receiver bad, good;
  bad.always(500);
  Deliveries got;
  DispatcherOptions o = fast(got);
  o.max_attempts = 3;
  o.backoff_base = Duration(60'000);  // the retry would come long after the test
  o.backoff_max = Duration(60'000);
  o.drain_timeout = Duration(5'000);
  auto d = make({{"bad", "webhook", bad.url("/x"), "", "", "", {}},
                 {"good", "webhook", good.url("/y"), "", "", "", {}}},
                o);
  ASSERT_TRUE(d);
  d->notify(event(EventKind::kFailed));
  auto recs = got.wait_final(1);  // good's delivery, while bad waits a minute
  ASSERT_GE(recs.size(), 2u);
  bool good_done = false;
  for (const auto& r : recs) good_done |= (r.sink == "good" && r.ok);
  EXPECT_TRUE(good_done);
  EXPECT_EQ(d->pending(), 1u);
  // stop() does not wait out the backoff: one last attempt, then the record is final.
  d->stop();
  recs = got.all();
  ASSERT_EQ(bad.requests().size(), 2u);
  EXPECT_TRUE(recs.back().final);
  EXPECT_EQ(recs.back().sink, "bad");
  EXPECT_EQ(recs.back().attempt, 2);
  d->notify(event(EventKind::kFailed));  // after stop: dropped, nothing sent
  EXPECT_EQ(d->dropped(), 1u);
}

TEST(Dispatcher, FullQueueDropsAndReports) {
  Receiver rx;
  rx.delay(300);
  Deliveries got;
  DispatcherOptions o = fast(got);
  o.queue_capacity = 2;
  auto d = make({{"h", "webhook", rx.url("/h"), "", "", "", {}}}, o);
  ASSERT_TRUE(d);
  for (int i = 0; i < 6; ++i) d->notify(event(EventKind::kStepPassed));
  EXPECT_GE(d->dropped(), 4u);  // the first may already be in flight (still queued)
  auto recs = got.wait_final(6);
  size_t dropped = 0, delivered = 0;
  for (const auto& r : recs) {
    if (r.result() == "dropped") {
      ++dropped;
      EXPECT_EQ(r.attempt, 0);
      EXPECT_NE(r.error.find("queue"), std::string::npos);
    }
    if (r.ok) ++delivered;
  }
  EXPECT_EQ(dropped, 4u);
  EXPECT_EQ(delivered, 2u);
}

TEST(Dispatcher, CreateRefusesAMissingSecretAndMasksSecrets) {
  Deliveries got;
  auto bad =
      Dispatcher::create({{"h", "webhook", "https://x.example/h", "", "", "NOPE", {}}}, fast(got));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("NOPE"), std::string::npos);
  auto masker = std::make_shared<Masker>();
  DispatcherOptions o = fast(got, {{"U", "https://hooks.example/services/abc/SECRET1"}});
  o.masker = masker;
  auto ok = Dispatcher::create({{"s", "slack", "", "U", "", "", {}}}, o);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(masker->mask("url=https://hooks.example/services/abc/SECRET1"), "url=****");
}

}  // namespace
}  // namespace ferry
