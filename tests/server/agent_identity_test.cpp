// The agent API takes the app's name and environment explicitly (issue 16, item 7): the
// instances get FERRY_APP / FERRY_ENV from them, not from an env map the control plane
// filled in, and a body whose names do not make the path's app is refused.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/http_agent_client.h"
#include "common/crypto.h"

namespace ferry {
namespace {

class AgentIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-ident-");
    std::filesystem::create_directories(dir_ / "out");
    // Instances may run as another user (ferry-app) when the test runs as root.
    chmod(dir_.c_str(), 0755);
    chmod((dir_ / "out").c_str(), 0777);
    AgentOptions o;
    o.data_dir = (dir_ / "agent").string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    const auto first = static_cast<uint16_t>(10000 + (getpid() % 90) * 100 + 50);
    o.instance_ports = PortRange{first, static_cast<uint16_t>(first + 49)};
    agent_ = std::make_unique<Agent>(o);
    ASSERT_TRUE(agent_->start().ok());
    add_agent_routes(http_, *agent_, token_);
    ASSERT_TRUE(http_.start().ok());
  }
  void TearDown() override {
    http_.stop();
    if (agent_) agent_->stop(true);
    std::filesystem::remove_all(dir_);
  }
  AppDesiredState state(const std::string& app_name, const std::string& env) {
    AppDesiredState d;
    d.app = "web.dev";
    d.app_name = app_name;
    d.env = env;
    d.generation = 1;
    InstanceSpec i;
    i.id = "web-v1-0";
    i.release = "v1";
    i.run.command = {"/bin/sh", "-c",
                     "env > " + (dir_ / "out" / "env.txt").string() + "; exec sleep 30"};
    i.run.stop_grace_ms = 500;
    i.checks.readiness.kind = ProbeSpec::Kind::kCommand;
    i.checks.readiness.command = {"/bin/true"};
    i.checks.readiness.interval_ms = 50;
    d.instances = {i};
    return d;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Agent> agent_;
  HttpServer http_{HttpServerOptions{}};
  std::string token_ = std::string(32, 't');
};

TEST_F(AgentIdentityTest, InstancesGetTheAppAndEnvironmentNamedInTheApi) {
  HttpAgentClient c(Endpoint{"127.0.0.1", http_.port()}, token_, 3000, "box");
  EXPECT_EQ(c.name(), "box");
  AppDesiredState d = state("web", "dev");
  // What the agent must not trust: a FERRY_APP slipped into the env map.
  d.instances[0].run.env["FERRY_APP"] = "other";
  ASSERT_TRUE(c.put_app(d).ok());
  std::string env;
  for (int i = 0; i < 400 && env.find("FERRY_ENV=") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream f(dir_ / "out" / "env.txt");
    env.assign(std::istreambuf_iterator<char>(f), {});
  }
  EXPECT_NE(env.find("FERRY_APP=web\n"), std::string::npos) << env;
  EXPECT_NE(env.find("FERRY_ENV=dev\n"), std::string::npos) << env;
}

TEST_F(AgentIdentityTest, NamesThatDoNotMakeThePathsAppAreRefusedAndChangeNothing) {
  HttpAgentClient c(Endpoint{"127.0.0.1", http_.port()}, token_, 3000, "box");
  for (auto [app, env] : {std::pair<std::string, std::string>{"db", "dev"},
                          {"web", "prod"},
                          {"web", ""},
                          {"", "dev"},
                          {"web.dev", ""}}) {
    Status s = c.put_app(state(app, env));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << app << "/" << env << ": " << s.message();
    EXPECT_NE(s.message().find("agent box"), std::string::npos) << s.message();
  }
  EXPECT_EQ(c.app_status("web.dev").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace ferry
