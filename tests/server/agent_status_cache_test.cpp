// /metrics' copy of the agents' figures (server/agent_status_cache.h): read in the
// background, so a scrape never waits on a slow or unreachable agent.
#include "server/agent_status_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

#include "wait_until.h"

namespace ferry {
namespace {

// An agent whose app_status() can be held until the test lets it go, and whose health
// can fail as an unreachable agent's does.
class HeldAgent final : public AgentClient {
 public:
  explicit HeldAgent(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  Status health() override {
    return down_ ? deadline_exceeded("agent " + name_ + ": connecting timed out") : Status::Ok();
  }
  Status put_app(const AppDesiredState&) override { return Status::Ok(); }
  Status set_weights(const std::string&, int64_t, const std::map<std::string, int>&) override {
    return Status::Ok();
  }
  Result<AppStatus> app_status(const std::string& app) override {
    ++status_calls_;
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !held_; });
    AppStatus s;
    s.app = app;
    s.releases.push_back(ReleaseStats{.release = "v1", .requests = 7});
    return s;
  }
  Status remove_app(const std::string&) override { return Status::Ok(); }

  void hold() {
    std::lock_guard lk(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lk(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  std::atomic<bool> down_{false};
  std::atomic<int> status_calls_{0};

 private:
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

AgentStatusCache::Targets targets_of(std::vector<HeldAgent*> agents) {
  return [agents] {
    std::vector<AgentStatusCache::Target> out;
    for (auto* a : agents) out.push_back({a, {{"web", "dev"}, {"api", "dev"}}});
    return out;
  };
}

TEST(AgentStatusCache, AScrapeReadsTheLastRoundAndNeverWaitsOnAnAgent) {
  HeldAgent a("a");
  a.hold();  // the first round hangs on a's app status
  AgentStatusCache cache(targets_of({&a}), 50);
  cache.start();
  ASSERT_TRUE(testing::wait_until([&] { return a.status_calls_ > 0; }));
  // While the round waits on the agent (until released, not for a time), the snapshot
  // answers: empty, never read.
  auto pending = std::async(std::launch::async, [&] { return cache.snapshot(); });
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(60)), std::future_status::ready)
      << "snapshot() waited on the agent";
  const auto empty = pending.get();
  EXPECT_TRUE(empty->apps.empty());
  EXPECT_EQ(empty->read_at_ms, 0);
  EXPECT_LT(cache.age_seconds(), 0);
  a.release();
  ASSERT_TRUE(testing::wait_until([&] { return cache.snapshot()->apps.size() == 2; }));
  const auto snap = cache.snapshot();
  EXPECT_EQ(snap->agent_up.at("a"), true);
  EXPECT_EQ(snap->apps[0].agent, "a");
  EXPECT_EQ(snap->apps[0].app, "web");
  EXPECT_EQ(snap->apps[0].env, "dev");
  EXPECT_EQ(snap->apps[0].status.app, "web.dev");  // the agent's name of the app
  EXPECT_EQ(snap->apps[1].status.app, "api.dev");
  EXPECT_EQ(snap->apps[0].status.releases.at(0).requests, 7u);
  EXPECT_GE(cache.age_seconds(), 0);
  // Rounds go on by themselves.
  const int calls = a.status_calls_;
  EXPECT_TRUE(testing::wait_until([&] { return a.status_calls_ > calls; }));
  cache.stop();
}

TEST(AgentStatusCache, AnAgentDownIsSaidSoAndDoesNotHoldTheOthers) {
  HeldAgent up("up"), down("down");
  down.down_ = true;
  AgentStatusCache cache(targets_of({&up, &down}), 60'000);
  cache.refresh();
  const auto snap = cache.snapshot();
  EXPECT_EQ(snap->agent_up.at("up"), true);
  EXPECT_EQ(snap->agent_up.at("down"), false);
  // Its apps were not asked one by one (each would wait for the same timeout).
  EXPECT_EQ(down.status_calls_, 0);
  ASSERT_EQ(snap->apps.size(), 2u);
  for (const auto& r : snap->apps) EXPECT_EQ(r.agent, "up");
  // Back up: the next round says so, and a round replaces the last one whole.
  down.down_ = false;
  cache.refresh();
  EXPECT_EQ(cache.snapshot()->agent_up.at("down"), true);
  EXPECT_EQ(cache.snapshot()->apps.size(), 4u);
}

TEST(AgentStatusCache, StopEndsTheRoundsEvenDuringTheWaitBetweenThem) {
  HeldAgent a("a");
  AgentStatusCache cache(targets_of({&a}), 600'000);  // one round, then a long wait
  cache.start();
  ASSERT_TRUE(testing::wait_until([&] { return cache.snapshot()->read_at_ms > 0; }));
  auto stopped = std::async(std::launch::async, [&] { cache.stop(); });
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(60)), std::future_status::ready)
      << "stop() waited for the next round";
  cache.stop();  // twice is fine
}

}  // namespace
}  // namespace ferry
