// How the server calls remote agents (server/agent_trust.h), against real HTTP servers on
// loopback standing in for agents. From an attacker's side: a server configured for a
// remote agent that is neither enrolled nor `insecure` sends it nothing (no desired state,
// no token); enrollment and revocation done while the server runs count from the next call.
#include "server/agent_trust.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "agent/http_agent_client.h"
#include "common/http_server.h"
#include "server/control_plane.h"
#include "server/enrollment.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

class AgentTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ferry-trust-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    trust_ = std::make_unique<AgentTrust>((dir_ / "tls").string(), clock_);
  }
  void TearDown() override {
    if (http_) http_->stop();
    fs::remove_all(dir_);
  }
  // A stand-in agent on loopback that records every request (and its Authorization).
  void start_recorder(std::shared_ptr<TlsContext> tls = nullptr) {
    HttpServerOptions o;
    o.tls = std::move(tls);
    o.read_timeout_ms = 3000;
    http_ = std::make_unique<HttpServer>(o);
    auto record = [this](HttpRequest& r) {
      ++requests_;
      if (!r.header("authorization").empty()) ++with_token_;
      return HttpResponse::json(Json{{"ok", true}});
    };
    http_->route("GET", "/v1/health", record);
    http_->fallback(record);
    ASSERT_TRUE(http_->start().ok());
  }
  // The server's client for `spec`, connected to the recorder whatever the spec's address
  // says: the trust decides from the spec, the recorder sees what would have been sent.
  std::unique_ptr<HttpAgentClient> client_for(const AgentSpec& spec) {
    auto c = std::make_unique<HttpAgentClient>(Endpoint{"127.0.0.1", http_->port()},
                                               "agent-token-0123456789", 3000, spec.name);
    c->set_tls_source([this, spec] { return trust_->context_for(spec); });
    return c;
  }
  static AgentSpec remote(const std::string& name) {
    AgentSpec a;
    a.name = name;
    a.address = "10.255.0.1:7071";
    return a;
  }

  FakeClock clock_;
  fs::path dir_;
  std::unique_ptr<AgentTrust> trust_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<int> requests_{0}, with_token_{0};
};

TEST_F(AgentTrustTest, ARemoteAgentNeitherEnrolledNorInsecureIsSentNothing) {
  start_recorder();
  const AgentSpec b = remote("b");
  auto client = client_for(b);
  Status s = client->health();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.message();
  EXPECT_NE(s.message().find("agent b (10.255.0.1:7071)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("ferry agents enroll b"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("agents.b.insecure: true"), std::string::npos) << s.message();
  AppDesiredState state;
  state.app = "web.dev";
  state.generation = 3;
  EXPECT_EQ(client->put_app(state).code(), Code::kFailedPrecondition);
  EXPECT_EQ(client->set_weights("web.dev", 3, {{"v1", 100}}).code(), Code::kFailedPrecondition);
  EXPECT_EQ(requests_.load(), 0) << "a request reached the agent over plain HTTP";
  EXPECT_EQ(with_token_.load(), 0);

  // The same agent with `tls: true` but not enrolled: refused too, saying how to enroll.
  AgentSpec b_tls = b;
  b_tls.tls = true;
  auto r = trust_->context_for(b_tls);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("agents.b.tls"), std::string::npos);
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(AgentTrustTest, PlainHttpOnlyOnLoopbackOrWhenTheEntrySaysInsecure) {
  start_recorder();
  AgentSpec local;
  local.name = "l";
  local.address = "127.0.0.1:7071";
  auto plain = trust_->context_for(local);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(*plain, nullptr);
  // tls: true asks for TLS even on loopback.
  local.tls = true;
  EXPECT_EQ(trust_->context_for(local).status().code(), Code::kFailedPrecondition);
  // insecure: true on a remote agent: called in clear, with its token (what the flag says).
  AgentSpec b = remote("b");
  b.insecure = true;
  ASSERT_TRUE(client_for(b)->health().ok());
  EXPECT_EQ(requests_.load(), 1);
  EXPECT_EQ(with_token_.load(), 1);
}

// The server's trust object lives as long as the server: an agent enrolled while it runs is
// called with mutual TLS from the next call, and a revocation while it runs is refused from
// the next handshake — no restart.
TEST_F(AgentTrustTest, EnrollmentAndRevocationWhileRunningCountFromTheNextCall) {
  const AgentSpec b = [] {
    AgentSpec a = remote("b");
    a.tls = true;
    return a;
  }();
  // Before any enrollment: no CA yet, nothing made by asking.
  EXPECT_EQ(trust_->context_for(b).status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(dir_ / "tls" / "ca.key"));

  // An admin enrolls b; b joins with its CSR (what `ferry agents enroll` and `ferry agent
  // join` do through the API) and serves TLS with its certificate.
  auto e = Enrollment::open((dir_ / "tls").string(), clock_);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto token = (*e)->issue_token("b", 60'000);
  ASSERT_TRUE(token.ok());
  const std::string key = make_private_key().value();
  auto cert = (*e)->redeem("b", *token, make_csr(key, "b").value());
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  auto agent_ctx = TlsContext::create(TlsContext::Role::kServer,
                                      TlsIdentity{*cert, key, (*e)->ca_pem(), {}}, kServerCertName);
  ASSERT_TRUE(agent_ctx.ok());
  start_recorder(*agent_ctx);

  auto client = client_for(b);
  Status first = client->health();
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_TRUE(client->tls());
  EXPECT_EQ(requests_.load(), 1);

  // Revoked while the server runs: the next call's handshake refuses b's certificate.
  ASSERT_TRUE((*e)->revoke("b").ok());
  Status after = client->health();
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.message().find("revoked"), std::string::npos) << after.message();
  EXPECT_EQ(requests_.load(), 1);
}

// The server's own local agent is called in clear too: --agent-listen off loopback is
// refused before anything starts.
TEST(AgentTrustServer, ALocalAgentListeningOffLoopbackIsRefused) {
  const fs::path dir =
      fs::temp_directory_path() / ("ferry-trust-local-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "ferry.yaml")
      << "version: 1\nserver:\n  store: sqlite:" << (dir / "f.db").string()
      << "\n  data_dir: " << (dir / "data").string()
      << "\nenvironments:\n  dev: {}\napps:\n  web:\n    port: 18998\n"
         "    run:\n      command: [\"/bin/true\"]\n";
  ServerOptions o;
  o.config_path = (dir / "ferry.yaml").string();
  o.listen = "127.0.0.1:0";
  o.agent_listen = "0.0.0.0:7071";
  o.log_file = (dir / "server.log").string();
  auto cp = ControlPlane::create(o);
  ASSERT_TRUE(cp.ok()) << cp.status().message();
  Status s = (*cp)->start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--agent-listen 0.0.0.0:7071 is not a loopback address"),
            std::string::npos)
      << s.message();
  (*cp)->stop();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ferry
