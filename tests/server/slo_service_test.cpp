// The SLO collector, gate, guard and attribution (server/slo_service.h) over a real SQLite
// store, a fake clock and a fake agent whose router counters the test sets.
#include "server/slo_service.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"
#include "config/loader.h"

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
  void make_service() {
    service_ = std::make_unique<SloService>(
        SloService::Deps{
            .store = store_.get(),
            .clock = &clock_,
            .log = &log_,
            .config = [this] { return config_; },
            .agents = [this](const std::string&) { return std::vector<AgentClient*>{&agent_}; }},
        SloService::Options{});
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
  EXPECT_FALSE(service_->budget_guard(d).has_value());
  agent_.set("v1", 10'100, 5);
  ASSERT_TRUE(service_->collect_once().ok());
  auto why = service_->gate(d);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("SLO gate"), std::string::npos) << *why;
  EXPECT_NE(why->find("5.0x over 1h"), std::string::npos) << *why;
  EXPECT_NE(why->find("max_burn 2x"), std::string::npos) << *why;
  EXPECT_NE(why->find("--gate slo"), std::string::npos) << *why;
  // 5 of 101 allowed errors is about 5% of the budget, more than max_budget_spend 2%.
  auto guard = service_->budget_guard(d);
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

}  // namespace
}  // namespace ferry
