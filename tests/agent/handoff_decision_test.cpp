// The decision of a planned handoff (agent/handoff.h) at the one moment stop 16 left open:
// the running agent sends "commit" just as the successor's deadline for an answer passes.
// The two sides are made to meet there with the test seams (HandoffServer::Hooks::
// before_commit, HandoffClient::DecisionHooks) instead of timing: whichever way the
// kernel orders the "commit" and the successor's withdrawal, exactly one of the two
// processes goes on as the agent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/handoff.h"

namespace ferry {
namespace {

enum class RunningAgentDecided { kNotYet, kCommitted, kAborted };

class HandoffDecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short: a Unix socket path has at most 107 bytes.
    static int n = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-decision-" + std::to_string(getpid()) + "-" + std::to_string(++n));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    HandoffServer::Hooks hooks;
    hooks.begin = [](bool) -> Result<Handover> { return Handover{}; };
    hooks.done = [this] { decide(RunningAgentDecided::kCommitted); };
    hooks.abort = [this](const std::string&) { decide(RunningAgentDecided::kAborted); };
    // The running agent got "ready" in time and holds its "commit" until the successor's
    // deadline has passed (bounded: a successor that never gets there lets it go on).
    hooks.before_commit = [this] {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::seconds(20), [this] { return commit_released_; });
    };
    server_.emplace(path(), hooks, 20'000);
    Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started.message();
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string path() const { return (dir_ / "handoff.sock").string(); }

  // On the successor's side, at a stage of its give-up: lets the running agent send its
  // "commit" now and waits until it has decided (sent, or failed to send and aborted).
  void commit_now_and_wait_for_the_decision() {
    release_commit();
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(20),
                 [this] { return decided_ != RunningAgentDecided::kNotYet; });
  }
  void release_commit() {
    std::lock_guard lk(mu_);
    commit_released_ = true;
    cv_.notify_all();
  }
  RunningAgentDecided decided() {
    std::lock_guard lk(mu_);
    return decided_;
  }

 private:
  void decide(RunningAgentDecided d) {
    std::lock_guard lk(mu_);
    decided_ = d;
    cv_.notify_all();
  }

  std::filesystem::path dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool commit_released_ = false;
  RunningAgentDecided decided_ = RunningAgentDecided::kNotYet;
  std::optional<HandoffServer> server_;
};

TEST_F(HandoffDecisionTest, ACommitSentAsTheSuccessorsDeadlinePassesMakesItTheAgent) {
  auto taken = HandoffClient::take_over(path(), 5000);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  // The "commit" reaches the successor after its deadline, before it withdraws: the
  // running agent's send succeeded, so it drains and exits; the successor must go on.
  HandoffClient::DecisionHooks hooks;
  hooks.deadline_passed = [this] { commit_now_and_wait_for_the_decision(); };
  taken->set_decision_hooks(hooks);
  Status s = taken->ready(200);
  ASSERT_EQ(decided(), RunningAgentDecided::kCommitted);
  EXPECT_TRUE(s.ok()) << "the running agent committed and leaves, and the successor left too: "
                      << s.message();
}

TEST_F(HandoffDecisionTest, ACommitAfterTheSuccessorWithdrewIsNotSentAndTheRunningAgentServesOn) {
  auto taken = HandoffClient::take_over(path(), 5000);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  // The successor gave up and withdrew first: the running agent's "commit" must fail to
  // send, so that it aborts and serves on while the successor leaves.
  HandoffClient::DecisionHooks hooks;
  hooks.withdrawn = [this] { commit_now_and_wait_for_the_decision(); };
  taken->set_decision_hooks(hooks);
  Status s = taken->ready(200);
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.message();
  EXPECT_EQ(decided(), RunningAgentDecided::kAborted)
      << "the running agent committed to a successor that had left";
}

TEST_F(HandoffDecisionTest, AnAnswerInTimeNeedsNoWithdrawal) {
  auto taken = HandoffClient::take_over(path(), 5000);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  bool gave_up = false;
  HandoffClient::DecisionHooks hooks;
  hooks.deadline_passed = [&] { gave_up = true; };
  taken->set_decision_hooks(hooks);
  release_commit();  // the "commit" goes out at once
  Status s = taken->ready(20'000);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(gave_up);
  // The running agent notes its decision just after sending it.
  for (int i = 0; i < 2000 && decided() == RunningAgentDecided::kNotYet; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(decided(), RunningAgentDecided::kCommitted);
}

}  // namespace
}  // namespace ferry
