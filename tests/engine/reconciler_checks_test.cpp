// The reconciler's periodic check that agents still have what they should: one call per
// agent for all of its apps (GenerationsSource::generations), not one status read per app;
// an app an agent lost is pushed again; an agent that predates the call is read per app.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"
#include "core/agent_generations.h"
#include "engine/reconciler.h"

namespace ferry {
namespace {

// An agent that only counts: which apps it has at which generation, and what was asked.
class CountingAgent final : public AgentClient, public GenerationsSource {
 public:
  std::string name() const override { return "local"; }
  Status put_app(const AppDesiredState& s) override {
    std::lock_guard lk(mu_);
    ++puts;
    put_apps.push_back(s.app);
    apps[s.app] = std::max(apps[s.app], s.generation);
    return Status::Ok();
  }
  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>&) override {
    std::lock_guard lk(mu_);
    apps[app] = std::max(apps[app], generation);
    return Status::Ok();
  }
  Result<AppStatus> app_status(const std::string& app) override {
    std::lock_guard lk(mu_);
    ++status_reads;
    auto it = apps.find(app);
    if (it == apps.end()) return not_found("app " + app + " is not on this agent");
    AppStatus s;
    s.app = app;
    s.generation = it->second;
    return s;
  }
  Result<std::map<std::string, int64_t>> generations() override {
    std::lock_guard lk(mu_);
    ++generation_reads;
    if (predates) return not_found("no route for GET /v1/generations");  // an older agent
    return apps;
  }
  Status remove_app(const std::string& app) override {
    std::lock_guard lk(mu_);
    apps.erase(app);
    return Status::Ok();
  }
  void reset_counts() {
    std::lock_guard lk(mu_);
    puts = status_reads = generation_reads = 0;
    put_apps.clear();
  }

  std::mutex mu_;
  std::map<std::string, int64_t> apps;
  int puts = 0, status_reads = 0, generation_reads = 0;
  std::vector<std::string> put_apps;
  bool predates = false;
};

class ReconcilerChecks : public ::testing::Test {
 protected:
  static constexpr int kApps = 6;
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-reconciler-");
    auto s = open_store("sqlite:" + (dir_ / "ferry.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    config_.path = "test.yaml";
    for (int i = 0; i < kApps; ++i) {
      AppSpec app;
      app.name = "a" + std::to_string(i);
      app.port = static_cast<uint16_t>(18100 + i);
      app.run.command = {"/bin/true"};
      config_.apps.push_back(app);
      ReleaseRecord r;
      r.app = app.name;
      r.version = "v1";
      r.created_at_ms = 1;
      ASSERT_TRUE(store_->create_release(r).ok());
    }
    EnvironmentSpec dev;
    dev.name = "dev";
    config_.environments = {dev};
    ctx_.store = store_.get();
    ctx_.clock = &clock_;
    ctx_.agents = [this](const std::string&) { return std::vector<AgentClient*>{&agent_}; };
    Reconciler::Options o;
    o.verify_ms = 5'000;
    reconciler_ = std::make_unique<Reconciler>(
        ctx_, [this] { return std::make_shared<const Config>(config_); }, o);
  }
  void TearDown() override {
    reconciler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void apply(int app) {
    auto r =
        reconciler_->apply("a" + std::to_string(app), "dev", 1,
                           DesiredSpec{.new_release = "v1", .new_count = 1, .new_weight = 100}, "");
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->at("local").ok());
  }
  void advance(int ms) { clock_.advance(std::chrono::milliseconds(ms)); }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  FakeClock clock_{from_unix_ms(1'700'000'000'000)};
  Config config_;
  EngineContext ctx_;
  CountingAgent agent_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerChecks, OneCallPerAgentChecksEveryAppAndTheirChecksFallDueTogether) {
  for (int i = 0; i < kApps - 1; ++i) apply(i);
  advance(2'000);
  apply(kApps - 1);  // taken later: its own check would fall due 2 s after the others'
  agent_.reset_counts();
  reconciler_->reconcile_once();
  EXPECT_EQ(agent_.generation_reads, 0);  // nothing due yet
  advance(3'001);
  reconciler_->reconcile_once();
  // The first five were due: one answer covered all six apps, and no status was read.
  EXPECT_EQ(agent_.generation_reads, 1);
  EXPECT_EQ(agent_.status_reads, 0);
  EXPECT_EQ(agent_.puts, 0);
  // The sixth was checked with them, so nothing falls due 2 s later…
  advance(2'000);
  reconciler_->reconcile_once();
  EXPECT_EQ(agent_.generation_reads, 1);
  // … and the next round is again one call for all.
  advance(3'001);
  reconciler_->reconcile_once();
  EXPECT_EQ(agent_.generation_reads, 2);
  EXPECT_EQ(agent_.status_reads, 0);
  for (const auto& st : reconciler_->standings()) EXPECT_FALSE(st.behind()) << st.app;
}

TEST_F(ReconcilerChecks, AnAppTheAgentLostIsPushedAgain) {
  for (int i = 0; i < kApps; ++i) apply(i);
  ASSERT_TRUE(agent_.remove_app("a3.dev").ok());  // a restarted agent without its state file
  agent_.reset_counts();
  advance(5'001);
  reconciler_->reconcile_once();  // the check finds it missing: generation 0, behind
  EXPECT_EQ(reconciler_->behind("a3", "dev", 1), std::vector<std::string>{"local"});
  reconciler_->reconcile_once();  // pushed again, the others left alone
  EXPECT_EQ(agent_.put_apps, std::vector<std::string>{"a3.dev"});
  EXPECT_EQ(agent_.apps.at("a3.dev"), 1);
  EXPECT_TRUE(reconciler_->behind("a3", "dev", 1).empty());
  EXPECT_EQ(agent_.status_reads, 0);
}

TEST_F(ReconcilerChecks, AnAgentThatPredatesTheCallIsReadPerApp) {
  for (int i = 0; i < kApps; ++i) apply(i);
  agent_.predates = true;
  ASSERT_TRUE(agent_.remove_app("a1.dev").ok());
  agent_.reset_counts();
  advance(5'001);
  reconciler_->reconcile_once();
  EXPECT_EQ(agent_.generation_reads, 1);
  EXPECT_EQ(agent_.status_reads, kApps);
  EXPECT_EQ(reconciler_->behind("a1", "dev", 1), std::vector<std::string>{"local"});
  reconciler_->reconcile_once();
  EXPECT_EQ(agent_.put_apps, std::vector<std::string>{"a1.dev"});
}

}  // namespace
}  // namespace ferry
