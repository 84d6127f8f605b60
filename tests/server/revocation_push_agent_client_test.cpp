// The background revocation pusher (server/revocation_push.h) against a real agent API on
// loopback: the list is delivered once, not sent again while the agent has it, and sent
// again after `repush_ms` so an agent whose TLS_DIR/revoked was deleted by hand gets the
// whole list back without a server restart (and the serials it regains are audited).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/http_agent_client.h"
#include "agent/revocation_list.h"
#include "common/http_server.h"
#include "server/revocation_push.h"

namespace ferry {
namespace {

class RevocationRepush : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-repush-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    AgentOptions o;
    o.data_dir = (dir_ / "agent").string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    agent_ = std::make_unique<Agent>(o);
    ASSERT_TRUE(agent_->start().ok());
    agent_list_ = std::make_shared<RevocationList>((dir_ / "agent-revoked").string());
    add_agent_routes(api_, *agent_, token_, AgentApiExtras{nullptr, agent_list_});
    ASSERT_TRUE(api_.start().ok());
    client_ =
        std::make_unique<HttpAgentClient>(Endpoint{"127.0.0.1", api_.port()}, token_, 10'000, "a");
    std::ofstream(dir_ / "server-revoked") << "aa11\n# a comment\nbb22\n";
  }
  void TearDown() override {
    api_.stop();
    agent_->stop(true);
    std::filesystem::remove_all(dir_);
  }
  RevocationPusher::Options options(int repush_ms) {
    RevocationPusher::Options o;
    o.revoked_path = (dir_ / "server-revoked").string();
    o.agents = {{"a", client_.get()}};
    o.enrolled = [](const std::string&) { return true; };
    o.delivered = [this](const std::string& agent, size_t added, size_t) {
      delivered_.push_back(agent + ":" + std::to_string(added));
    };
    o.repush_ms = repush_ms;
    return o;
  }
  uint64_t calls() const {
    auto c = client_->connection_counts();
    return c.opened + c.reused;
  }

  std::filesystem::path dir_;
  std::string token_ = std::string(32, 't');
  std::unique_ptr<Agent> agent_;
  std::shared_ptr<RevocationList> agent_list_;
  HttpServer api_{HttpServerOptions{}};
  std::unique_ptr<HttpAgentClient> client_;
  std::vector<std::string> delivered_;
};

TEST_F(RevocationRepush, AnAgentThatHasTheListIsNotSentItAgainBeforeRepushMs) {
  RevocationPusher pusher(options(3'600'000));
  EXPECT_TRUE(pusher.push_once().empty());
  EXPECT_EQ(agent_list_->serials().value(), (std::set<std::string>{"aa11", "bb22"}));
  EXPECT_EQ(delivered_, std::vector<std::string>{"a:2"});
  const uint64_t after_first = calls();
  EXPECT_TRUE(pusher.push_once().empty());
  EXPECT_EQ(calls(), after_first);
}

TEST_F(RevocationRepush, AnAgentWhoseListWasDeletedByHandGetsItBackWithoutARestart) {
  RevocationPusher pusher(options(0));  // every pass re-pushes
  EXPECT_TRUE(pusher.push_once().empty());
  ASSERT_EQ(agent_list_->serials().value(), (std::set<std::string>{"aa11", "bb22"}));
  // The operator deletes the agent's TLS_DIR/revoked.
  std::filesystem::remove(agent_list_->path());
  ASSERT_TRUE(agent_list_->serials().value().empty());
  EXPECT_TRUE(pusher.push_once().empty());
  EXPECT_EQ(agent_list_->serials().value(), (std::set<std::string>{"aa11", "bb22"}));
  // Both deliveries audited; a pass that adds nothing is not.
  EXPECT_TRUE(pusher.push_once().empty());
  EXPECT_EQ(delivered_, (std::vector<std::string>{"a:2", "a:2"}));
}

TEST_F(RevocationRepush, TheBackgroundLoopRepushesOnItsOwn) {
  auto o = options(0);
  o.interval_ms = 20;
  RevocationPusher pusher(o);
  pusher.start();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto has_all = [&] {
    auto s = agent_list_->serials();
    return s.ok() && s->size() == 2;
  };
  while (!has_all() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(has_all());
  std::filesystem::remove(agent_list_->path());
  while (!has_all() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  pusher.stop();
  EXPECT_TRUE(has_all()) << "the deleted list was not pushed again";
}

}  // namespace
}  // namespace ferry
