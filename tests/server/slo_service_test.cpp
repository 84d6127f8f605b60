// The SLO collector, gate, guard and attribution (server/slo_service.h) over a real SQLite
// store, a fake clock and a fake agent whose router counters the test sets.
#include "server/slo_service.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"
#include "config/loader.h"
#include "core/plan.h"
#include "notify/dispatcher.h"
#include "notify/receiver.h"
#include "store/slo_rows.h"

namespace ferry {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kT0 = 1'800'000'000'000;  // a whole minute (and hour)

// An agent whose router reports what the test sets; unreachable on demand.
class CountersAgent final : public AgentClient {
 public:
  Status put_app(const AppDesiredState&) override { return Status::Ok(); }
  Status set_weights(const std::string&, int64_t, const std::map<std::string, int>&) override {
    return Status::Ok();
  }
  Result<AppStatus> app_status(const std::string& app) override {
    std::lock_guard lk(mu);
    if (down) return unavailable("agent down");
    AppStatus s;
    s.app = app;
    for (const auto& [rel, st] : releases) s.releases.push_back(st);
    return s;
  }
  Status remove_app(const std::string&) override { return Status::Ok(); }

  void set(const std::string& release, uint64_t requests, uint64_t errors, uint64_t slow = 0) {
    std::lock_guard lk(mu);
    ReleaseStats& s = releases[release];
    s.release = release;
    s.requests = requests;
    s.status_5xx = errors;
    s.status_2xx = requests - errors;
    s.latency_counts.assign(latency_buckets_ms().size() + 1, 0);
    s.latency_counts[0] = requests - slow;
    s.latency_counts.back() = slow;
  }
  std::mutex mu;
  bool down = false;
  std::map<std::string, ReleaseStats> releases;
};

constexpr const char* kConfig = R"(version: 1
environments:
  staging: {}
  production:
    requires: [staging]
    slo_gate: {min_budget: 10%, max_burn: 2x, max_budget_spend: 2%}
apps:
  web:
    port: 8080
    run:
      command: ["./server"]
    slo:
      availability: 99%
      window: 1d
  other:
    port: 8081
    run:
      command: ["./server"]
)";

class SloServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-slo-");
    auto s = open_store("sqlite:" + (dir_ / "ferry.db").string());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
    auto c = parse_config(kConfig, "ferry.yaml");
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    config_ = std::make_shared<const Config>(std::move(*c));
    make_service();
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void make_service(std::function<void(const SloService::AlertChange&)> on_alert = {}) {
    service_ = std::make_unique<SloService>(
        SloService::Deps{
            .store = store_.get(),
            .clock = &clock_,
            .log = &log_,
            .config = [this] { return config_; },
            .agents = [this](const std::string&) { return std::vector<AgentClient*>{&agent_}; },
            .on_alert = std::move(on_alert)},
        SloService::Options{});
  }
  // The deployment in the store (its events need it), with its `created` event.
  void record(const DeploymentRecord& d) {
    if (!store_->get_release(d.app, d.release).ok()) {
      ReleaseRecord r;
      r.app = d.app;
      r.version = d.release;
      ASSERT_TRUE(store_->create_release(r).ok());
    }
    DeploymentEvent created;
    created.deployment_id = d.id;
    created.time_ms = d.created_at_ms;
    created.type = EventType::kCreated;
    created.message = "created";
    Status s = store_->create_deployment(d, created);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
  // Requests and 5xx stored for web in production, over every bucket.
  std::pair<int64_t, int64_t> stored() {
    auto b = store_->list_slo_buckets("web", "production", 0, kT0 * 2);
    EXPECT_TRUE(b.ok());
    int64_t r = 0, e = 0;
    for (const auto& x : *b) r += x.requests, e += x.errors;
    return {r, e};
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<const Config> config_;
  FakeClock clock_{from_unix_ms(kT0 + 5'000)};
  Logger log_{"test", LogLevel::kError};
  CountersAgent agent_;
  std::unique_ptr<SloService> service_;
};

TEST_F(SloServiceTest, CountsDeltasAcrossResetsReleaseChangesAndAnUnreachableAgent) {
  // The first look only sets the cursor: what the router counted before is of unknown age.
  agent_.set("v1", 100, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{0, 0}));
  agent_.set("v1", 150, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{50, 5}));
  // A new release is counted from its first request.
  agent_.set("v2", 20, 20);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{70, 25}));
  // The router's counters reset (a new router process): everything it reports is new.
  agent_.set("v1", 10, 1);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{80, 26}));
  // Unreachable: nothing counted, no error; counted at its next answer.
  agent_.down = true;
  agent_.set("v1", 30, 1);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{80, 26}));
  agent_.down = false;
  clock_.advance(std::chrono::minutes(3));
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{100, 26}));
  // In two buckets: the first minute and the one three minutes later.
  EXPECT_EQ(store_->list_slo_buckets("web", "production", 0, kT0 * 2)->size(), 2u);
  // The app without an SLO is never read into buckets.
  EXPECT_TRUE(store_->list_slo_buckets("other", "production", 0, kT0 * 2)->empty());
}

TEST_F(SloServiceTest, ARestartedServerLosesNothingAndCountsNothingTwice) {
  agent_.set("v1", 100, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  agent_.set("v1", 200, 10);
  ASSERT_TRUE(service_->collect_once().ok());
  ASSERT_EQ(stored(), (std::pair<int64_t, int64_t>{100, 10}));
  // A new server (or leader) on the same store: the cursors come from the store.
  service_.reset();
  store_.reset();
  auto s = open_store("sqlite:" + (dir_ / "ferry.db").string());
  ASSERT_TRUE(s.ok());
  store_ = std::move(*s);
  make_service();
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{100, 10}));
  agent_.set("v1", 230, 10);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_EQ(stored(), (std::pair<int64_t, int64_t>{130, 10}));
}

DeploymentRecord deployment(int64_t created, int64_t finished) {
  DeploymentRecord d;
  d.id = "d-1";
  d.app = "web";
  d.env = "production";
  d.release = "v2";
  d.created_at_ms = created;
  d.finished_at_ms = finished;
  return d;
}

// The runner's step_started event of `step` (index i) at time_ms.
DeploymentEvent step_started(const DeploymentRecord& d, int i, PlanStep step, int64_t time_ms) {
  DeploymentEvent e;
  e.deployment_id = d.id;
  e.time_ms = time_ms;
  e.type = EventType::kStepStarted;
  e.step = i;
  e.message = step.describe();
  e.data = step;
  return e;
}

PlanStep plan_step(PlanStep::Kind kind, int weight = 0) {
  PlanStep s;
  s.kind = kind;
  s.weight = weight;
  return s;
}

TEST_F(SloServiceTest, GateWaitsOnBurnAndGuardRollsBackOnSpend) {
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  // 10,000 good requests: the gate is open, nothing spent.
  agent_.set("v1", 10'000, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_FALSE(service_->gate(deployment(kT0, 0)).has_value());
  // Two hours later a deployment starts and 5 of 100 requests fail: 5% bad against 1%
  // allowed is 5x over 5m and 1h; the budget (101 allowed in the day) is 95% left.
  clock_.advance(std::chrono::hours(2));
  const DeploymentRecord d = deployment(to_unix_ms(clock_.now()), 0);
  EXPECT_FALSE(service_->budget_guard(d, d.created_at_ms).has_value());
  agent_.set("v1", 10'100, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  auto why = service_->gate(d);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("SLO gate"), std::string::npos) << *why;
  EXPECT_NE(why->find("5.0x over 1h"), std::string::npos) << *why;
  EXPECT_NE(why->find("max_burn 2x"), std::string::npos) << *why;
  EXPECT_NE(why->find("--gate slo"), std::string::npos) << *why;
  // 5 of 101 allowed errors is about 5% of the budget, more than max_budget_spend 2%.
  auto guard = service_->budget_guard(d, d.created_at_ms);
  ASSERT_TRUE(guard.has_value());
  EXPECT_NE(guard->find("more than max_budget_spend 2%"), std::string::npos) << *guard;
  // Staging has no gate: always open.
  DeploymentRecord st = d;
  st.env = "staging";
  EXPECT_FALSE(service_->gate(st).has_value());
  // Twenty minutes later the 5m window is quiet: the burn check lets go.
  clock_.advance(std::chrono::minutes(20));
  agent_.set("v1", 10'200, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  EXPECT_FALSE(service_->gate(d).has_value());
}

TEST_F(SloServiceTest, SpendIsAttributedToTheDeploymentAndTheHourAfter) {
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  agent_.set("v1", 1000, 2);  // during the deployment (minute 0)
  ASSERT_TRUE(service_->collect_once().ok());
  clock_.advance(std::chrono::minutes(10));
  agent_.set("v1", 2000, 3);  // after it finished (minute 10)
  ASSERT_TRUE(service_->collect_once().ok());
  DeploymentRecord d = deployment(kT0, kT0 + 2 * kMin);
  // A first deployment: its start step opens the traffic.
  record(d);
  ASSERT_TRUE(
      store_->append_event(step_started(d, 0, plan_step(PlanStep::Kind::kStart), kT0)).ok());
  auto spent = service_->spend({d});
  ASSERT_EQ(spent.count("d-1"), 1u);
  // The window ending with the deployment holds 1,000 requests (10 errors allowed); the
  // one ending with the hour after so far holds 2,000 (20 allowed).
  EXPECT_NEAR(spent["d-1"].during, 2.0 / 10, 1e-9);
  EXPECT_NEAR(spent["d-1"].after, 1.0 / 20, 1e-9);
  EXPECT_FALSE(spent["d-1"].after_complete);
  clock_.advance(std::chrono::hours(1));
  EXPECT_TRUE(service_->spend({d})["d-1"].after_complete);
  // An app without an SLO has no entry.
  d.app = "other";
  EXPECT_TRUE(service_->spend({d}).empty());
}

TEST_F(SloServiceTest, GuardAndStatusAreServedFromACopyReadAgainOnAWriteOrAfterTheInterval) {
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  agent_.set("v1", 1000, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  const DeploymentRecord d = deployment(kT0, 0);
  // The runner's ticks and a scrape's four gauges: one read of the store between writes.
  const uint64_t r0 = service_->bucket_reads();
  for (int i = 0; i < 200; ++i) {
    EXPECT_FALSE(service_->budget_guard(d, kT0).has_value());
    ASSERT_TRUE(service_->status("web", "production").ok());
  }
  EXPECT_EQ(service_->bucket_reads() - r0, 1u);
  // A write through a store of this process is seen at once: half of 100 requests failed.
  SloBucketRecord b;
  b.app = "web";
  b.env = "production";
  b.start_ms = slo::minute_of(to_unix_ms(clock_.now()));
  b.requests = 100;
  b.errors = 50;
  ASSERT_TRUE(store_->add_slo_counts({b}, {}).ok());
  auto st = service_->status("web", "production");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->objectives.at(0).bad, 50u);
  // 50 bad of the 11 the window allows (1% of 1,100).
  auto why = service_->budget_guard(d, kT0);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("454.545%"), std::string::npos) << *why;
  const uint64_t r1 = service_->bucket_reads();
  EXPECT_EQ(r1 - r0, 2u);
  for (int i = 0; i < 100; ++i) (void)service_->budget_guard(d, kT0);
  EXPECT_EQ(service_->bucket_reads(), r1);
  // Another server's collector writes where this process cannot see: the copy expires
  // after collect_every_ms (10 s) all the same.
  clock_.advance(std::chrono::seconds(9));
  (void)service_->status("web", "production");
  EXPECT_EQ(service_->bucket_reads(), r1);
  clock_.advance(std::chrono::seconds(1));
  (void)service_->status("web", "production");
  EXPECT_EQ(service_->bucket_reads(), r1 + 1);
  // A deployment older than the copy's range is read once more, then served from it.
  const DeploymentRecord old = deployment(kT0 - 3LL * 24 * 3'600'000, 0);
  (void)service_->budget_guard(old, old.created_at_ms);
  (void)service_->budget_guard(old, old.created_at_ms);
  EXPECT_EQ(service_->bucket_reads(), r1 + 2);
}

TEST_F(SloServiceTest, GuardCountsSpendFromTheFirstTrafficStepNotWhileWaitingAtAGate) {
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  agent_.set("v1", 10'000, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  clock_.advance(std::chrono::hours(1));
  // Created now; while it waits at a gate the stable release fails 5 requests: 5 of the
  // 101 the day allows, about 5% of the budget.
  const DeploymentRecord d = deployment(to_unix_ms(clock_.now()), 0);
  agent_.set("v1", 10'100, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  clock_.advance(std::chrono::minutes(10));
  const int64_t traffic = to_unix_ms(clock_.now());
  agent_.set("v1", 10'200, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  // Counted from creation it would have spent too much; from its traffic, nothing.
  EXPECT_TRUE(service_->budget_guard(d, d.created_at_ms).has_value());
  EXPECT_FALSE(service_->budget_guard(d, traffic).has_value());
  EXPECT_FALSE(service_->budget_guard(d, 0).has_value()) << "no traffic yet: no verdict";
  // Its own errors count: 4 of the 103 allowed is about 3.9%, above 2%.
  clock_.advance(std::chrono::minutes(1));
  agent_.set("v1", 10'300, 9);
  ASSERT_TRUE(service_->collect_once().ok());
  auto why = service_->budget_guard(d, traffic);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("since its traffic started"), std::string::npos) << *why;
  EXPECT_NE(why->find("more than max_budget_spend 2%"), std::string::npos) << *why;
}

TEST_F(SloServiceTest, HistoryCountsSpendFromTheFirstTrafficStepAsTheGuardDoes) {
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  agent_.set("v1", 10'000, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  clock_.advance(std::chrono::hours(1));
  // A canary of v2 over v1, created now; it starts its instances and waits at a gate while
  // the stable release fails 5 requests (not its doing).
  // Its record in the store is finished (one open deployment per app and environment is
  // allowed, and the three below share one); the spend is read up to now all the same.
  DeploymentRecord d = deployment(to_unix_ms(clock_.now()), 0);
  d.previous_release = "v1";
  d.state = DeploymentState::kSucceeded;
  record(d);
  ASSERT_TRUE(
      store_->append_event(step_started(d, 0, plan_step(PlanStep::Kind::kStart), d.created_at_ms))
          .ok());
  agent_.set("v1", 10'100, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  // Not sending traffic yet: it spent nothing.
  auto before = service_->spend({d});
  ASSERT_EQ(before.count("d-1"), 1u);
  EXPECT_EQ(before["d-1"].during, 0.0);
  EXPECT_EQ(before["d-1"].traffic_since_ms, 0);
  // Its first weight step starts ten minutes later; then its own 4 failures.
  clock_.advance(std::chrono::minutes(10));
  const int64_t traffic = to_unix_ms(clock_.now());
  ASSERT_TRUE(
      store_->append_event(step_started(d, 1, plan_step(PlanStep::Kind::kWeight, 10), traffic))
          .ok());
  ASSERT_TRUE(store_
                  ->append_event(
                      step_started(d, 2, plan_step(PlanStep::Kind::kWeight, 50), traffic + 30'000))
                  .ok());
  clock_.advance(std::chrono::minutes(1));
  agent_.set("v1", 10'300, 9);
  ASSERT_TRUE(service_->collect_once().ok());
  auto spent = service_->spend({d});
  EXPECT_EQ(spent["d-1"].traffic_since_ms, traffic);
  // 4 of the 103 errors the day allows, as the guard says; from creation it would be 9.
  EXPECT_NEAR(spent["d-1"].during, 4.0 / 103, 1e-9);
  auto why = service_->budget_guard(d, traffic);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find(slo::percent(4.0 / 103)), std::string::npos) << *why;
  // A first deployment (no stable release) sends traffic from its start step.
  DeploymentRecord first = d;
  first.id = "d-2";
  first.previous_release.clear();
  record(first);
  ASSERT_TRUE(
      store_
          ->append_event(step_started(first, 0, plan_step(PlanStep::Kind::kStart), d.created_at_ms))
          .ok());
  EXPECT_NEAR(service_->spend({first})["d-2"].during, 9.0 / 103, 1e-9);
  // A step event with hostile data is skipped, not trusted or thrown on.
  DeploymentRecord odd = d;
  odd.id = "d-3";
  record(odd);
  DeploymentEvent bad = step_started(odd, 0, plan_step(PlanStep::Kind::kWeight, 10), traffic);
  bad.data = Json{{"kind", "weight"}, {"weight", "all"}};
  ASSERT_TRUE(store_->append_event(bad).ok());
  EXPECT_EQ(service_->spend({odd})["d-3"].during, 0.0);
}

TEST_F(SloServiceTest, BurnAlertsAreNotifiedOncePerEpisodeAndResolved) {
  // Slack and PagerDuty at a loopback receiver, fed as the control plane feeds them.
  testing::Receiver rx;
  testing::Deliveries got;
  DispatcherOptions o;
  o.jitter = false;
  o.backoff_base = Duration(5);
  o.on_delivery = got.callback();
  o.env = [&rx](const std::string& k) -> std::optional<std::string> {
    if (k == "SLACK_URL") return rx.url("/slack");
    if (k == "PD_KEY") return "R0UTINGKEY";
    return std::nullopt;
  };
  auto dispatcher =
      Dispatcher::create({{"chat", "slack", "", "SLACK_URL", "", "", {"slo_burn"}},
                          {"pager", "pagerduty", rx.url("/pd"), "", "PD_KEY", "", {"slo_burn"}}},
                         o);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.status().to_string();
  std::mutex mu;
  std::vector<SloService::AlertChange> changes;
  make_service([&](const SloService::AlertChange& c) {
    {
      std::lock_guard lk(mu);
      changes.push_back(c);
    }
    (*dispatcher)->notify(slo_alert_notification(c, clock_.now()));
  });
  auto production = [&] {
    std::lock_guard lk(mu);
    std::vector<SloService::AlertChange> out;
    for (const auto& c : changes)
      if (c.env == "production") out.push_back(c);
    return out;
  };
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  agent_.set("v1", 1000, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  service_->check_alerts();
  EXPECT_TRUE(production().empty());
  // Two hours later half of 100 requests fail: 50x over 5m and 1h (page); over 6h, 50 of
  // 1,100 is 4.5x, under the ticket's 6x.
  clock_.advance(std::chrono::hours(2));
  agent_.set("v1", 1100, 50);
  ASSERT_TRUE(service_->collect_once().ok());
  for (int i = 0; i < 5; ++i) service_->check_alerts();  // one episode, one notification
  auto p = production();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].firing);
  EXPECT_EQ(p[0].objective, "availability");
  EXPECT_EQ(p[0].alert, "page");
  EXPECT_NE(p[0].message.find("50.0x over 1h"), std::string::npos) << p[0].message;
  // Ten minutes of good traffic: the 5m window is quiet, the page resolves (once).
  clock_.advance(std::chrono::minutes(10));
  agent_.set("v1", 2100, 50);
  ASSERT_TRUE(service_->collect_once().ok());
  for (int i = 0; i < 5; ++i) service_->check_alerts();
  p = production();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_FALSE(p[1].firing);
  EXPECT_EQ(p[1].alert, "page");
  // web has the same SLO in staging (the fake agent answers for both): 2 x (slack +
  // pagerduty) x (fire + resolve).
  auto recs = got.wait_final(8);
  ASSERT_TRUE((*dispatcher)->wait_idle(Duration(20'000)));
  std::vector<Json> pd, slack;
  for (const auto& r : rx.requests()) {
    auto j = parse_json(r.body);
    ASSERT_TRUE(j.ok());
    if (r.target == "/pd") pd.push_back(*j);
    if (r.target == "/slack") slack.push_back(*j);
  }
  ASSERT_EQ(pd.size(), 4u);
  ASSERT_EQ(slack.size(), 4u);
  std::vector<Json> pd_prod;
  for (const auto& j : pd)
    if (j.at("dedup_key") == "ferry/web/production/slo/availability/page") pd_prod.push_back(j);
  ASSERT_EQ(pd_prod.size(), 2u);
  EXPECT_EQ(pd_prod[0].at("event_action"), "trigger");
  EXPECT_EQ(pd_prod[0].at("payload").at("severity"), "critical");
  EXPECT_EQ(pd_prod[0].at("payload").at("class"), "slo_burn");
  EXPECT_EQ(pd_prod[1].at("event_action"), "resolve");
  bool fire_text = false, resolved_text = false;
  for (const auto& j : slack) {
    const std::string t = j.value("text", "");
    fire_text |= t.find("production: SLO error budget burning") != std::string::npos;
    resolved_text |= t.find("production: SLO error budget burn resolved") != std::string::npos;
  }
  EXPECT_TRUE(fire_text) << slack[0].dump();
  EXPECT_TRUE(resolved_text) << slack.back().dump();
  (*dispatcher)->stop();
}

TEST_F(SloServiceTest, ANewLeaderAnnouncesTheAlertsThatFireAndNothingElse) {
  std::vector<SloService::AlertChange> changes;
  auto record = [&](const SloService::AlertChange& c) {
    if (c.env == "production") changes.push_back(c);
  };
  make_service(record);
  agent_.set("v1", 0, 0);
  ASSERT_TRUE(service_->collect_once().ok());
  service_->check_alerts();  // nothing fires: no resolve of what never fired
  EXPECT_TRUE(changes.empty());
  // Every request fails: 100x over every window, the page and the ticket fire.
  agent_.set("v1", 100, 100);
  ASSERT_TRUE(service_->collect_once().ok());
  service_->check_alerts();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].alert, "page");
  EXPECT_EQ(changes[1].alert, "ticket");
  changes.clear();
  service_->check_alerts();
  EXPECT_TRUE(changes.empty());
  // A new leader cannot know what the last one sent: it announces what fires, once.
  make_service(record);
  service_->check_alerts();
  service_->check_alerts();
  EXPECT_EQ(changes.size(), 2u);
  for (const auto& c : changes) EXPECT_TRUE(c.firing);
}

}  // namespace
}  // namespace ferry
