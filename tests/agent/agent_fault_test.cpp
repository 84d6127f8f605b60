// The agent's game-day endpoints (agent_fault_routes.cpp) with a real instance
// (ferry-demo-app) behind the app's router: they need the agent token like every agent
// route, faults are answered by the router and end by themselves, hostile settings are
// refused with nothing changed, and a killed instance is restarted as after a crash.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/http_agent_client.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "test_paths.h"
#include "wait_until.h"

namespace ferry {
namespace {

uint16_t chaos_free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class AgentFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-agent-fault-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    AgentOptions o;
    // Instance ports of their own (agents of parallel test processes must not share).
    const auto first = static_cast<uint16_t>(10000 + ((getpid() + 45) % 90) * 100);
    o.instance_ports = PortRange{first, static_cast<uint16_t>(first + 99)};
    o.data_dir = dir_.string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    agent_ = std::make_unique<Agent>(o);
    ASSERT_TRUE(agent_->start().ok());
    add_agent_routes(http_, *agent_, token_);
    ASSERT_TRUE(http_.start().ok());
    client_ = std::make_unique<HttpAgentClient>(Endpoint{"127.0.0.1", http_.port()}, token_);

    AppDesiredState d;
    d.app = "web.dev";
    d.generation = 1;
    d.listen_port = chaos_free_port();
    d.weights = {{"v1", 100}};
    InstanceSpec s;
    s.id = "web.dev-v1-0";
    s.release = "v1";
    s.run.command = {testing::demo_app_binary(), "--port", "${PORT}", "--version", "v1"};
    s.run.stop_grace_ms = 2000;
    s.checks.readiness.kind = ProbeSpec::Kind::kHttp;
    s.checks.readiness.path = "/healthz";
    s.checks.readiness.interval_ms = 50;
    s.checks.readiness.timeout_ms = 500;
    d.instances = {s};
    ASSERT_TRUE(client_->put_app(d).ok());
    app_port_ = d.listen_port;
    ASSERT_TRUE(testing::wait_until(
        [&] {
          auto st = agent_->app_status("web.dev");
          return st.ok() && st->instances.size() == 1 &&
                 st->instances[0].state == InstanceState::kReady;
        },
        std::chrono::seconds(30)));
  }
  void TearDown() override {
    http_.stop();
    if (agent_) agent_->stop(true);
    agent_.reset();
    std::filesystem::remove_all(dir_);
  }
  int get_status() {
    HttpClient c(Endpoint{"127.0.0.1", app_port_});
    auto r = c.request("GET", "/");
    return r.ok() ? r->status : 0;
  }

  std::filesystem::path dir_;
  const std::string token_ = std::string(32, 'k');
  std::unique_ptr<Agent> agent_;
  HttpServer http_{HttpServerOptions{}};
  std::unique_ptr<HttpAgentClient> client_;
  uint16_t app_port_ = 0;
};

TEST_F(AgentFaultTest, EndpointsNeedTheAgentToken) {
  HttpClient anon(Endpoint{"127.0.0.1", http_.port()});
  const std::string body = R"({"experiment": "chaos-x", "error_share": 1, "duration_ms": 60000})";
  EXPECT_EQ(anon.request("PUT", "/v1/apps/web.dev/fault", body)->status, 401);
  EXPECT_EQ(anon.request("GET", "/v1/apps/web.dev/fault")->status, 401);
  EXPECT_EQ(anon.request("DELETE", "/v1/apps/web.dev/fault")->status, 401);
  EXPECT_EQ(anon.request("POST", "/v1/apps/web.dev/kill", "{}")->status, 401);
  HttpAgentClient wrong(Endpoint{"127.0.0.1", http_.port()}, std::string(32, 'x'));
  FaultSetting f;
  f.experiment = "chaos-x";
  f.error_share = 1;
  f.duration_ms = 60'000;
  EXPECT_EQ(wrong.set_fault("web.dev", f).code(), Code::kUnauthenticated);
  EXPECT_EQ(wrong.kill_instance("web.dev", "").status().code(), Code::kUnauthenticated);
  // Nothing was set and nothing killed.
  EXPECT_EQ(get_status(), 200);
  auto st = agent_->app_status("web.dev");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->instances[0].restarts, 0);
}

TEST_F(AgentFaultTest, ErrorsAreAnsweredByTheRouterUntilTheyEndByThemselves) {
  FaultSetting f;
  f.experiment = "chaos-e1";
  f.error_share = 1;
  f.error_status = 502;
  f.duration_ms = 1500;
  ASSERT_TRUE(client_->set_fault("web.dev", f).ok());
  EXPECT_EQ(get_status(), 502);
  auto r = client_->fault_report("web.dev");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->active);
  EXPECT_EQ(r->setting.experiment, "chaos-e1");
  EXPECT_GT(r->setting.expires_at_ms, 0);
  // No call ends it: the agent does, at its duration.
  ASSERT_TRUE(testing::wait_until([&] { return get_status() == 200; }, std::chrono::seconds(30)));
  r = client_->fault_report("web.dev");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->active);
  EXPECT_GE(r->counters.errored, 1u);
  // The release counters never saw the injected answers.
  auto st = agent_->app_status("web.dev");
  ASSERT_TRUE(st.ok());
  for (const auto& rel : st->releases) EXPECT_EQ(rel.status_5xx, 0u);
}

TEST_F(AgentFaultTest, ClearEndsTheNamedExperimentOnly) {
  FaultSetting f;
  f.experiment = "chaos-e2";
  f.error_share = 1;
  f.duration_ms = 600'000;
  ASSERT_TRUE(client_->set_fault("web.dev", f).ok());
  EXPECT_EQ(get_status(), 503);
  ASSERT_TRUE(client_->clear_fault("web.dev", "chaos-other").ok());
  EXPECT_EQ(get_status(), 503);
  ASSERT_TRUE(client_->clear_fault("web.dev", "chaos-e2").ok());
  EXPECT_EQ(get_status(), 200);
}

TEST_F(AgentFaultTest, HostileSettingsAreRefusedAndChangeNothing) {
  HttpClient c(Endpoint{"127.0.0.1", http_.port()});
  c.set_header("Authorization", "Bearer " + token_);
  for (
      const char* body : {
          R"({"experiment": "chaos-x", "error_share": 2, "duration_ms": 60000})",
          R"({"experiment": "chaos-x", "error_share": 1, "duration_ms": 3600001})",
          R"({"experiment": "chaos-x", "error_share": 1, "duration_ms": 1e300})",
          R"({"experiment": "chaos-x", "latency_share": 1, "latency_ms": 99999999999, "duration_ms": 60000})",
          R"({"experiment": "../../x", "error_share": 1, "duration_ms": 60000})",
          R"({"experiment": "chaos-x", "error_share": 1, "error_status": 200, "duration_ms": 60000})",
          R"({"error_share": 1, "duration_ms": 60000})",
          R"(["chaos-x"])",
          "not json",
      }) {
    auto r = c.request("PUT", "/v1/apps/web.dev/fault", body);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << body << ": " << r->body;
  }
  EXPECT_EQ(c.request("PUT", "/v1/apps/nope/fault",
                      R"({"experiment": "chaos-x", "error_share": 1, "duration_ms": 60000})")
                ->status,
            404);
  EXPECT_EQ(c.request("POST", "/v1/apps/web.dev/kill", R"({"instance": 5})")->status, 400);
  EXPECT_EQ(get_status(), 200);
  auto r = client_->fault_report("web.dev");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->setting.experiment.empty());
}

TEST_F(AgentFaultTest, AKilledInstanceIsRestartedAsAfterACrash) {
  auto killed = client_->kill_instance("web.dev", "");
  ASSERT_TRUE(killed.ok()) << killed.status().message();
  EXPECT_EQ(*killed, "web.dev-v1-0");
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto st = agent_->app_status("web.dev");
        return st.ok() && st->instances.size() == 1 && st->instances[0].restarts >= 1 &&
               st->instances[0].state == InstanceState::kReady;
      },
      std::chrono::seconds(30)));
  EXPECT_EQ(get_status(), 200);
  EXPECT_EQ(client_->kill_instance("web.dev", "web.dev-v9-0").status().code(), Code::kNotFound);
  EXPECT_EQ(client_->kill_instance("nope", "").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace ferry
