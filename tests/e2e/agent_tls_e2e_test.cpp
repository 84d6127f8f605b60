// Mutual TLS between the server and a remote agent with the real binary: an admin enrolls
// the agent (`POST /api/v1/agents/NAME/enroll`), the agent makes its key and CSR (`ferry
// agent init`) and joins once with the token (`ferry agent join`), then serves its API with
// `--tls-dir`; the server calls it with its own certificate, pinned to the agent's name,
// and a deployment succeeds over it. From an attacker's side: the token does not work twice,
// the agent answers neither plain HTTP (even with the agent token), nor a certificate of
// another CA, nor the agent's own certificate used as a client; a revoked agent is refused.
// The server is never restarted: it reads enrollment and revocation while it runs.
#include <fstream>

#include "common/tls.h"
#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const char* kTlsApp = R"(    port: @APP_PORT@
    instances: 1
    run:
      command: ["@DEMO@", "--port", "${PORT}", "--version", "${VERSION}"]
    checks:
      readiness:
        http: {path: /healthz}
        interval: 100ms
    strategy: immediate
)";

class TlsCluster {
 public:
  TlsCluster() {
    dir_ = std::filesystem::temp_directory_path() / ("ferry-e2e-tls-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    server_port_ = free_port();
    agent_port_ = free_port();
    const uint16_t app_port = free_port();
    std::ofstream(dir_ / "agent.token") << "tls-agent-token-" << getpid() << "-0123456789abcdef\n";
    std::filesystem::permissions(dir_ / "agent.token", std::filesystem::perms::owner_read |
                                                           std::filesystem::perms::owner_write);
    std::string app = std::regex_replace(kTlsApp, std::regex("@DEMO@"), demo_bin());
    app = std::regex_replace(app, std::regex("@APP_PORT@"), std::to_string(app_port));
    std::ofstream(config()) << "version: 1\nserver:\n  listen: 127.0.0.1:" << server_port_
                            << "\n  store: sqlite:" << (dir_ / "data/ferry.db").string()
                            << "\n  data_dir: " << (dir_ / "data").string()
                            << "\n  start_local_agent: false\nagents:\n  h1:\n    address: "
                               "127.0.0.1:"
                            << agent_port_
                            << "\n    token_file: " << (dir_ / "agent.token").string()
                            << "\nenvironments:\n  dev:\n    agents: [h1]\napps:\n  web:\n"
                            << app;
    std::string out;
    EXPECT_EQ(run(ferry_bin() + " --json token create --offline --config " + config() +
                      " --name e2e-admin --role admin",
                  &out),
              0)
        << out;
    if (auto j = parse_json(out); j.ok()) token_ = j->value("token", "");
  }
  ~TlsCluster() {
    stop(server_, SIGKILL);
    stop(agent_, SIGTERM);
    std::ifstream state(dir_ / "agent/agent-state.json");
    std::string text((std::istreambuf_iterator<char>(state)), {});
    if (auto j = parse_json(text); j.ok())
      for (const auto& app : (*j)["apps"])
        for (const auto& i : app["instances"])
          if (int pid = i["status"].value("pid", 0); pid > 0) kill(-pid, SIGKILL);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string config() const { return (dir_ / "ferry.yaml").string(); }
  std::string tls_dir() const { return (dir_ / "agent/tls").string(); }
  uint16_t agent_port() const { return agent_port_; }
  std::string cli(const std::string& args, int* rc) {
    std::string out;
    *rc = run("FERRY_SERVER=127.0.0.1:" + std::to_string(server_port_) + " FERRY_TOKEN=" + token_ +
                  " " + ferry_bin() + " " + args,
              &out);
    return out;
  }
  void start_server() {
    stop(server_, SIGTERM);
    ProcessLaunch l;
    l.argv = {ferry_bin(), "server", "--config", config()};
    l.log_path = (dir_ / "server.log").string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    server_ = *h;
    ASSERT_TRUE(testing::wait_until(
        [&] {
          HttpClient c(Endpoint{"127.0.0.1", server_port_}, HttpClientOptions{500, 1 << 20});
          auto r = c.request("GET", "/health/live");
          return r.ok() && r->status == 200;
        },
        std::chrono::seconds(30)));
  }
  void start_agent() {
    ProcessLaunch l;
    l.argv = {ferry_bin(),    "agent",
              "--listen",     "127.0.0.1:" + std::to_string(agent_port_),
              "--data-dir",   (dir_ / "agent").string(),
              "--token-file", (dir_ / "agent.token").string(),
              "--tls-dir",    tls_dir()};
    l.log_path = (dir_ / "agent.log").string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    agent_ = *h;
  }
  Result<Json> api(const std::string& method, const std::string& target,
                   const Json* body = nullptr) {
    HttpClient c(Endpoint{"127.0.0.1", server_port_}, HttpClientOptions{10000, 16 << 20});
    c.set_header("Authorization", "Bearer " + token_);
    return c.call(method, target, body);
  }
  std::string log(const std::string& f) const {
    std::ifstream in(dir_ / f);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  static void stop(ProcessHandle& h, int sig) {
    if (h.pid <= 0) return;
    kill(h.pid, sig);
    int code;
    if (!testing::wait_until([&] { return reap_child(h.pid, &code); }, std::chrono::seconds(10)))
      kill(h.pid, SIGKILL);
    h = {};
  }

  std::filesystem::path dir_;
  uint16_t server_port_ = 0, agent_port_ = 0;
  std::string token_;
  ProcessHandle server_, agent_;
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(AgentTlsE2E, EnrolledAgentIsCalledWithMutualTlsAndRefusesEveryoneElse) {
  TlsCluster c;
  ASSERT_NO_FATAL_FAILURE(c.start_server());
  Json none = Json::object();
  auto enroll = c.api("POST", "/api/v1/agents/h1/enroll", &none);
  ASSERT_TRUE(enroll.ok()) << enroll.status().message();
  const std::string join_token = enroll->value("token", "");
  const std::string ca_sha = enroll->value("ca_sha256", "");
  ASSERT_FALSE(join_token.empty());
  // The join token never reaches the audit.
  auto audit = c.api("GET", "/api/v1/audit?limit=100");
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->dump().find(join_token), std::string::npos);

  int rc = 0;
  std::string out = c.cli("agent init --tls-dir " + c.tls_dir() + " --name h1", &rc);
  ASSERT_EQ(rc, 0) << out;
  // Joined once, checking the CA against the fingerprint enroll printed.
  const std::string join = "agent join --tls-dir " + c.tls_dir() + " --name h1 --token ";
  out = c.cli(join + join_token + " --ca-sha256 " + ca_sha, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(std::filesystem::status(c.tls_dir() + "/agent.key").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // Used: the same token again is refused.
  out = c.cli(join + join_token, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("not valid"), std::string::npos) << out;

  // The running server calls h1 with TLS from now on: enrollment is read live.
  ASSERT_NO_FATAL_FAILURE(c.start_agent());
  Json rel{{"app", "web"}, {"version", "v1"}, {"git_sha", "abc1"}, {"env", Json::object()}};
  ASSERT_TRUE(c.api("POST", "/api/v1/releases", &rel).ok());
  Json body{{"app", "web"}, {"env", "dev"}, {"release", "v1"}};
  auto d = c.api("POST", "/api/v1/deployments", &body);
  ASSERT_TRUE(d.ok()) << d.status().message();
  Json final;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto r = c.api("GET", "/api/v1/deployments/" + d->value("id", ""));
        if (r.ok()) final = *r;
        const std::string s = final.value("state", "");
        return s == "succeeded" || s == "failed";
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(final.value("state", ""), "succeeded") << final.dump(2) << c.log("server.log");

  // Plain HTTP with the right agent token: no answer.
  HttpClient plain(Endpoint{"127.0.0.1", c.agent_port()}, HttpClientOptions{2000, 1 << 20});
  std::string agent_token = slurp(c.tls_dir() + "/../../agent.token");
  while (!agent_token.empty() && agent_token.back() == '\n') agent_token.pop_back();
  plain.set_header("Authorization", "Bearer " + agent_token);
  auto p = plain.request("GET", "/v1/apps");
  EXPECT_FALSE(p.ok() && p->status == 200);
  // The agent's own certificate as a client (same CA, but not the server's name): refused.
  const std::string d2 = c.tls_dir() + "/";
  TlsIdentity own{slurp(d2 + "agent.crt"), slurp(d2 + "agent.key"), slurp(d2 + "ca.crt"), {}};
  auto ctx = TlsContext::create(TlsContext::Role::kClient, own, "h1");
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  HttpClientOptions o{2000, 1 << 20, *ctx};
  HttpClient as_agent(Endpoint{"127.0.0.1", c.agent_port()}, o);
  auto r = as_agent.request("GET", "/v1/health");
  EXPECT_FALSE(r.ok()) << r->status << " " << r->body;
  // A certificate of another CA named like the server: refused.
  auto other = make_ca("other", 1).value();
  auto key = make_private_key().value();
  auto cert = sign_csr(other, make_csr(key, kServerCertName).value(), kServerCertName, 1).value();
  auto ctx2 = TlsContext::create(TlsContext::Role::kClient,
                                 TlsIdentity{cert, key, slurp(d2 + "ca.crt"), {}}, "h1");
  ASSERT_TRUE(ctx2.ok());
  HttpClient stranger(Endpoint{"127.0.0.1", c.agent_port()},
                      HttpClientOptions{2000, 1 << 20, *ctx2});
  auto r2 = stranger.request("GET", "/v1/health");
  EXPECT_FALSE(r2.ok()) << r2->status << " " << r2->body;

  // Revoked while the server runs: from its next call the server refuses the agent's
  // certificate and says why — no restart.
  auto rev = c.api("POST", "/api/v1/agents/h1/revoke", &none);
  ASSERT_TRUE(rev.ok()) << rev.status().message();
  Json h1;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto st = c.api("GET", "/api/v1/apps/web/envs/dev/status");
        if (!st.ok() || (*st)["agents"].size() != 1) return false;
        h1 = (*st)["agents"][0];
        return h1.value("error", "").find("revoked") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << h1.dump();
}

}  // namespace
}  // namespace ferry::e2e
