// exclude_paths of an availability SLO (docs/slo.md, "Excluded paths") end to end through a
// real router: its failures on an excluded path do not spend the error budget, the same
// failures on another path do, and a target dressed up as an excluded path is counted. The
// router gets its paths the way an agent's router does (Config::app_for_env → RouterSpec);
// the collector reads its counters through an AgentClient, over a real SQLite store.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"
#include "config/loader.h"
#include "router/router.h"
#include "router/test_backend.h"
#include "server/slo_service.h"

namespace ferry {
namespace {

using testing_router::kRouterApp;
using testing_router::kRouterKey;
using testing_router::TestBackend;
using testing_router::TestClient;

constexpr const char* kExcludeConfig = R"(version: 1
environments:
  production: {}
apps:
  web:
    port: 8080
    run:
      command: ["./server"]
    slo:
      availability: {target: 99%, exclude_paths: [/healthz, "/internal/*"]}
      window: 1d
)";

// The app's router on this "agent": what GET /v1/apps/{app} reports.
class RouterAgent final : public AgentClient {
 public:
  explicit RouterAgent(Router& r) : router_(r) {}
  Status put_app(const AppDesiredState&) override { return Status::Ok(); }
  Status set_weights(const std::string&, int64_t, const std::map<std::string, int>&) override {
    return Status::Ok();
  }
  Result<AppStatus> app_status(const std::string& app) override {
    AppStatus s;
    s.app = app;
    s.releases = router_.stats();
    return s;
  }
  Status remove_app(const std::string&) override { return Status::Ok(); }

 private:
  Router& router_;
};

class SloExcludePaths : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-slo-paths-");
    auto s = open_store("sqlite:" + (dir_ / "ferry.db").string());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
    auto c = parse_config(kExcludeConfig, "ferry.yaml");
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    config_ = std::make_shared<const Config>(std::move(*c));
    RouterOptions o;
    o.key = kRouterKey;
    o.app = kRouterApp;
    router_ = std::make_unique<Router>(o);
    ASSERT_TRUE(router_->start().ok());
    RouteTable t;
    t.weights = {{"v1", 100}};
    t.backends = {backend_.route("a", "v1")};
    t.policy = config_->app_for_env(*config_->app("web"), "production").router;
    t.stable = "v1";
    router_->set_table(t);
    agent_ = std::make_unique<RouterAgent>(*router_);
    service_ = std::make_unique<SloService>(
        SloService::Deps{
            .store = store_.get(),
            .clock = &clock_,
            .log = &log_,
            .config = [this] { return config_; },
            .agents =
                [this](const std::string&) { return std::vector<AgentClient*>{agent_.get()}; }},
        SloService::Options{});
  }
  void TearDown() override {
    service_.reset();
    router_->stop();
    router_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // n GETs of target through the router; each must reach the backend's answer.
  void get(const std::string& target, int n, int want_status) {
    TestClient c(router_->port());
    for (int i = 0; i < n; ++i) ASSERT_EQ(c.get(target).result_int(), want_status) << target;
  }
  slo::ObjectiveStatus availability() {
    EXPECT_TRUE(service_->collect_once().ok());
    auto st = service_->status("web", "production");
    EXPECT_TRUE(st.ok()) << st.status().to_string();
    return st.ok() ? st->objectives.at(0) : slo::ObjectiveStatus{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<const Config> config_;
  FakeClock clock_{from_unix_ms(1'800'000'000'000 + 5'000)};
  Logger log_{"test", LogLevel::kError};
  TestBackend backend_{"v1a"};
  std::unique_ptr<Router> router_;
  std::unique_ptr<RouterAgent> agent_;
  std::unique_ptr<SloService> service_;
};

TEST_F(SloExcludePaths, FailuresOnAnExcludedPathSpendNoBudgetAndTheSameElsewhereDo) {
  ASSERT_EQ(availability().total, 0u);  // the first look only sets the cursor
  get("/api/orders", 1000, 200);
  EXPECT_EQ(availability().total, 1000u);
  // The health endpoint fails 200 times: left out of the SLO, still seen by the analysis.
  backend_.fail_with(503);
  get("/healthz", 150, 503);
  get("/healthz?probe=lb", 30, 503);
  get("/internal/metrics", 20, 503);
  slo::ObjectiveStatus o = availability();
  EXPECT_EQ(o.total, 1000u);
  EXPECT_EQ(o.bad, 0u);
  EXPECT_DOUBLE_EQ(o.budget_remaining, 1.0);
  ReleaseStats v1 = router_->stats().at(0);
  EXPECT_EQ(v1.status_5xx, 200u) << "the release's own counters keep every failure";
  EXPECT_EQ(v1.slo_5xx, 0u);
  EXPECT_EQ(v1.requests - v1.slo_requests, 200u);
  // The same failures on other paths, or dressed up as the excluded ones, spend it.
  get("/api/orders", 5, 503);
  get("/healthz/../api/orders", 1, 503);
  get("/%68ealthz", 1, 503);
  get("/HEALTHZ", 1, 503);
  get("/internal", 1, 503);
  get("/healthzz", 1, 503);
  o = availability();
  EXPECT_EQ(o.total, 1010u);
  EXPECT_EQ(o.bad, 10u);
  // 10 bad of the 10.1 the day allows (1% of 1,010).
  EXPECT_NEAR(o.budget_remaining, 1 - 10 / 10.1, 1e-9);
}

TEST_F(SloExcludePaths, WithoutExcludedPathsTheSameFailuresSpendTheBudget) {
  // The control: the same app without exclude_paths, the router told nothing.
  std::string text = kExcludeConfig;
  text.replace(text.find("{target: 99%, exclude_paths: [/healthz, \"/internal/*\"]}"),
               std::string("{target: 99%, exclude_paths: [/healthz, \"/internal/*\"]}").size(),
               "99%");
  auto c = parse_config(text, "ferry.yaml");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  config_ = std::make_shared<const Config>(std::move(*c));
  RouteTable t;
  t.weights = {{"v1", 100}};
  t.backends = {backend_.route("a", "v1")};
  t.policy = config_->app_for_env(*config_->app("web"), "production").router;
  ASSERT_TRUE(t.policy.slo_exclude_paths.empty());
  t.stable = "v1";
  router_->set_table(t);
  ASSERT_EQ(availability().total, 0u);
  get("/api/orders", 1000, 200);
  backend_.fail_with(503);
  get("/healthz", 5, 503);
  const slo::ObjectiveStatus o = availability();
  EXPECT_EQ(o.total, 1005u);
  EXPECT_EQ(o.bad, 5u);
}

}  // namespace
}  // namespace ferry
