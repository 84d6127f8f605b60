// The agent refuses a desired state whose router settings it cannot carry out: an SLO's
// excluded paths (RouterSpec::slo_exclude_paths, core/slo_paths.h) that are too many, too
// long, not paths or with control characters get 400 naming the entry, and nothing of the
// app is kept; a good list is accepted and reported back in the app's desired state.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "common/http_client.h"
#include "common/http_server.h"

namespace ferry {
namespace {

class AgentSloPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-agent-slo-paths-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    AgentOptions o;
    o.data_dir = dir_.string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    agent_ = std::make_unique<Agent>(o);
    ASSERT_TRUE(agent_->start().ok());
    add_agent_routes(http_, *agent_, token_);
    ASSERT_TRUE(http_.start().ok());
  }
  void TearDown() override {
    http_.stop();
    if (agent_) agent_->stop(true);
    agent_.reset();
    std::filesystem::remove_all(dir_);
  }
  Json desired(Json paths) {
    return Json{
        {"app", "web.dev"},           {"generation", 1},
        {"listen_port", 0},           {"weights", Json::object()},
        {"instances", Json::array()}, {"router", {{"slo_exclude_paths", std::move(paths)}}}};
  }

  std::filesystem::path dir_;
  const std::string token_ = std::string(32, 'k');
  std::unique_ptr<Agent> agent_;
  HttpServer http_{HttpServerOptions{}};
};

TEST_F(AgentSloPaths, HostileExcludedPathsAreRefusedAndNothingIsKept) {
  HttpClient c(Endpoint{"127.0.0.1", http_.port()});
  c.set_header("Authorization", "Bearer " + token_);
  Json many = Json::array();
  for (int i = 0; i < 17; ++i) many.push_back("/p" + std::to_string(i));
  const std::vector<std::pair<Json, std::string>> cases = {
      {many, "at most 16"},
      {Json::array({"/" + std::string(5000, 'a')}), "at most 256"},
      {Json::array({"healthz"}), "does not start with '/'"},
      {Json::array({"/health\r\nX-Evil: 1"}), "control character"},
      {Json::array({std::string("/a\0b", 4)}), "control character"},
      {Json::array({"/*"}), "every request"},
      {Json::array({"/a/../b"}), "segment"},
  };
  for (const auto& [paths, says] : cases) {
    auto r = c.request("PUT", "/v1/apps/web.dev", desired(paths).dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << says << ": " << r->body;
    EXPECT_NE(r->body.find("slo_exclude_paths"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(says), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("X-Evil: 1\r"), std::string::npos) << "a control character echoed";
  }
  // Wrong types are refused too, by the JSON reader.
  auto r = c.request("PUT", "/v1/apps/web.dev", desired(Json{{"a", 1}}).dump());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_FALSE(agent_->app_status("web.dev").ok()) << "a refused desired state left an app";
  // The in-process path (the server's local agent) refuses the same.
  AppDesiredState d;
  d.app = "web.dev";
  d.generation = 1;
  d.router.slo_exclude_paths = {"no-slash"};
  EXPECT_EQ(agent_->put_app(d).code(), Code::kInvalidArgument);

  // A good list is kept.
  r = c.request("PUT", "/v1/apps/web.dev",
                desired(Json::array({"/healthz", "/internal/*"})).dump());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 202) << r->body;
}

}  // namespace
}  // namespace ferry
