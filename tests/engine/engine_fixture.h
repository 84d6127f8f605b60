// Shared set-up of the engine tests: a real SQLite store in a temp folder, a FakeAgent,
// and a canary app with short steps.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/crypto.h"
#include "engine/engine.h"
#include "fake_agent.h"
#include "wait_until.h"

namespace ferry {

class EngineFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-engine-");
    auto s = open_store("sqlite:" + (dir_ / "ferry.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    log_ = std::make_unique<Logger>("test", LogLevel::kWarn);
    AppSpec app;
    app.name = "web";
    app.port = 18080;
    app.instances = 2;
    app.run.command = {"/bin/true"};
    app.progress_deadline_ms = 600;
    app.strategy.kind = StrategySpec::Kind::kCanary;
    app.strategy.steps = {{.kind = CanaryStep::Kind::kWeight, .weight = 10},
                          {.kind = CanaryStep::Kind::kPause, .pause_ms = 200},
                          {.kind = CanaryStep::Kind::kAnalysis, .analysis_ms = 300},
                          {.kind = CanaryStep::Kind::kWeight, .weight = 50},
                          {.kind = CanaryStep::Kind::kAnalysis, .analysis_ms = 300}};
    app.analysis.interval_ms = 100;
    app.analysis.min_requests = 10;
    app.analysis.max_error_rate = 0.05;
    config_.path = "test.yaml";
    config_.apps = {app};
    EnvironmentSpec dev;
    dev.name = "dev";
    config_.environments = {dev};
    for (const char* v : {"v1", "v2", "v3"}) {
      ReleaseRecord r;
      r.app = "web";
      r.version = v;
      r.created_at_ms = 1;
      ASSERT_TRUE(store_->create_release(r).ok());
    }
    restart_engine();
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void set_strategy(const std::function<void(AppSpec&)>& f) {
    f(config_.apps[0]);
    restart_engine();
  }
  void restart_engine() {
    engine_.reset();
    EngineContext ctx;
    ctx.store = store_.get();
    ctx.clock = &clock_;
    ctx.log = log_.get();
    ctx.masker = log_->masker();
    ctx.agents = [this](const std::string&) {
      std::vector<AgentClient*> all{&agent_};
      all.insert(all.end(), more_agents_.begin(), more_agents_.end());
      return all;
    };
    ctx.gates = gates_;
    ctx.budget_guard = budget_guard_;
    ctx.secrets = [this](const std::string&, const std::string&) { return secrets_; };
    engine_ = std::make_unique<Engine>(ctx, std::make_shared<const Config>(config_));
    engine_->start();
  }
  std::string deploy(const std::string& v) {
    auto d = engine_->deploy("web", "dev", v, "alice");
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return d.ok() ? d->id : "";
  }
  DeploymentRecord deploy_and_wait(const std::string& v) {
    auto id = deploy(v);
    auto d = engine_->wait_final(id, std::chrono::seconds(30));
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return d.ok() ? *d : DeploymentRecord{};
  }
  // Waits until the deployment has `count` events of `type`.
  bool wait_for_event(const std::string& id, const std::string& type, int count = 1) {
    return testing::wait_until([&] {
      auto ev = store_->list_events(id, 0, 1000);
      int n = 0;
      for (const auto& e : *ev) n += to_string(e.type) == type;
      return n >= count;
    });
  }
  // Waits until the runner of `id` has looked at its step `n` more times (Engine::rounds):
  // a check that something did not happen follows this, not a fixed sleep.
  bool wait_rounds(const std::string& id, int n = 3) {
    const int64_t from = engine_->rounds(id);
    return from >= 0 && testing::wait_until([&] { return engine_->rounds(id) >= from + n; });
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Logger> log_;
  SystemClock clock_;
  Config config_;
  testing::FakeAgent agent_;
  std::vector<AgentClient*> more_agents_;  // other hosts of the environment (partition tests)
  std::function<GateDecision(const DeploymentRecord&)> gates_;
  std::function<std::optional<std::string>(const DeploymentRecord&, int64_t)> budget_guard_;
  std::map<std::string, std::string> secrets_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace ferry
