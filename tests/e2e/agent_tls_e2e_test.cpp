// Mutual TLS between the server and a remote agent with the real binary: an admin enrolls
// the agent (`POST /api/v1/agents/NAME/enroll`), the agent makes its key and CSR (`ferry
// agent init`) and joins once with the token (`ferry agent join`), then serves its API with
// `--tls-dir`; the server calls it with its own certificate, pinned to the agent's name,
// and a deployment succeeds over it. From an attacker's side: the token does not work twice,
// the agent answers neither plain HTTP (even with the agent token), nor a certificate of
// another CA, nor the agent's own certificate used as a client; a revoked agent is refused.
// The server is never restarted: it reads enrollment and revocation while it runs.
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fstream>
#include <set>

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
  uint16_t server_port() const { return server_port_; }
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
  void stop_agent() { stop(agent_, SIGTERM); }
  std::string data_tls() const { return (dir_ / "data/tls").string(); }
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

// One kept-alive TLS connection to an agent, as whoever holds `id`; ask() sends one request
// on it and returns the answer's status (0 when none came).
class KeptAliveTls {
 public:
  KeptAliveTls(const TlsIdentity& id, uint16_t port, std::string agent_token)
      : token_(std::move(agent_token)) {
    auto ctx = TlsContext::create(TlsContext::Role::kClient, id, "h1");
    if (!ctx.ok()) return;
    ctx_ = *ctx;
    stream_ =
        std::make_unique<boost::beast::ssl_stream<boost::beast::tcp_stream>>(ioc_, ctx_->native());
    boost::beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(60));
    boost::beast::error_code ec;
    boost::beast::get_lowest_layer(*stream_).connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) stream_->handshake(boost::asio::ssl::stream_base::client, ec);
    connected_ = !ec;
  }
  bool connected() const { return connected_; }
  int ask(const std::string& target) {
    if (!connected_) return 0;
    namespace http = boost::beast::http;
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "h1");
    req.set(http::field::authorization, "Bearer " + token_);
    boost::beast::error_code ec;
    http::write(*stream_, req, ec);
    if (ec) return 0;
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(*stream_, buf, res, ec);
    return ec ? 0 : static_cast<int>(res.result_int());
  }

 private:
  boost::asio::io_context ioc_;
  std::string token_;
  std::shared_ptr<TlsContext> ctx_;
  std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> stream_;
  bool connected_ = false;
};

std::set<std::string> revoked_serials_in(const std::string& path) {
  std::set<std::string> out;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != '#') out.insert(line);
  return out;
}

// Revocation pushed by the server (issue 16): the server's own certificate leaks, an admin
// revokes it; the server makes a new one and tells the agent, which from then on refuses
// the old certificate (new handshakes and a connection kept open from before) although
// nobody wrote a file on its host; the server goes on calling it with the new one. An
// agent that was down when a revocation happened gets it when it is back. Not an admin:
// refused, nothing revoked.
TEST(AgentTlsE2E, ARevocationReachesTheAgentAndTheOldCertificateIsRefusedAtOnce) {
  TlsCluster c;
  ASSERT_NO_FATAL_FAILURE(c.start_server());
  Json none = Json::object();
  auto enroll = c.api("POST", "/api/v1/agents/h1/enroll", &none);
  ASSERT_TRUE(enroll.ok()) << enroll.status().message();
  int rc = 0;
  std::string out = c.cli("agent init --tls-dir " + c.tls_dir() + " --name h1", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = c.cli(
      "agent join --tls-dir " + c.tls_dir() + " --name h1 --token " + enroll->value("token", ""),
      &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_NO_FATAL_FAILURE(c.start_agent());
  // An agent named like the server would be answered as the server: refused.
  auto as_server = c.api("POST", "/api/v1/agents/ferry-server/enroll", &none);
  ASSERT_FALSE(as_server.ok());
  EXPECT_EQ(as_server.status().code(), Code::kInvalidArgument);

  std::string agent_token = slurp(c.tls_dir() + "/../../agent.token");
  while (!agent_token.empty() && agent_token.back() == '\n') agent_token.pop_back();
  const std::string t = c.data_tls() + "/";
  const TlsIdentity old_server{
      slurp(t + "server.crt"), slurp(t + "server.key"), slurp(t + "ca.crt"), {}};
  const std::string old_serial = cert_serial(old_server.cert_pem).value();
  // The leaked certificate works while it is not revoked, and keeps a connection open.
  std::unique_ptr<KeptAliveTls> kept_ptr;
  ASSERT_TRUE(testing::wait_until(  // the agent is starting
      [&] {
        kept_ptr = std::make_unique<KeptAliveTls>(old_server, c.agent_port(), agent_token);
        return kept_ptr->ask("/v1/health") == 200;
      },
      std::chrono::seconds(30)));
  KeptAliveTls& kept = *kept_ptr;

  // A deployer may not revoke.
  Json deployer_body{{"name", "dep"}, {"role", "deployer"}};
  auto dep = c.api("POST", "/api/v1/tokens", &deployer_body);
  ASSERT_TRUE(dep.ok()) << dep.status().message();
  {
    HttpClient as_deployer(Endpoint{"127.0.0.1", c.server_port()},
                           HttpClientOptions{5000, 1 << 20});
    as_deployer.set_header("Authorization", "Bearer " + dep->value("token", ""));
    auto r = as_deployer.request("POST", "/api/v1/agents/ferry-server/revoke", "{}");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 403) << r->body;
  }
  EXPECT_EQ(revoked_serials_in(c.tls_dir() + "/revoked").count(old_serial), 0u);
  EXPECT_EQ(kept.ask("/v1/health"), 200);

  out = c.cli("agents revoke ferry-server", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("not told yet"), std::string::npos) << out;
  // Told over the agent API: the agent's own list has it; nobody wrote it on the host.
  EXPECT_EQ(revoked_serials_in(c.tls_dir() + "/revoked").count(old_serial), 1u)
      << slurp(c.tls_dir() + "/revoked");
  // The connection from before gets no further answer, a new handshake none at all.
  EXPECT_EQ(kept.ask("/v1/health"), 0);
  KeptAliveTls fresh(old_server, c.agent_port(), agent_token);
  EXPECT_EQ(fresh.ask("/v1/health"), 0);
  // The server calls the agent with its new certificate.
  const std::string new_serial = cert_serial(slurp(t + "server.crt")).value();
  EXPECT_NE(new_serial, old_serial);
  const TlsIdentity new_server{
      slurp(t + "server.crt"), slurp(t + "server.key"), slurp(t + "ca.crt"), {}};
  KeptAliveTls good(new_server, c.agent_port(), agent_token);
  EXPECT_EQ(good.ask("/v1/health"), 200);
  auto audit = c.api("GET", "/api/v1/audit?limit=100");
  ASSERT_TRUE(audit.ok());
  EXPECT_NE(audit->dump().find("agent.revocations_delivered"), std::string::npos);

  // Down while the next revocation happens: told when it is back, without anyone asking.
  c.stop_agent();
  out = c.cli("agents revoke ferry-server", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("not told yet"), std::string::npos) << out;
  EXPECT_EQ(revoked_serials_in(c.tls_dir() + "/revoked").count(new_serial), 0u);
  ASSERT_NO_FATAL_FAILURE(c.start_agent());
  EXPECT_TRUE(testing::wait_until(
      [&] { return revoked_serials_in(c.tls_dir() + "/revoked").count(new_serial) == 1; },
      std::chrono::seconds(60)))
      << c.log("server.log");
  EXPECT_EQ(KeptAliveTls(new_server, c.agent_port(), agent_token).ask("/v1/health"), 0);
  EXPECT_EQ(revoked_serials_in(c.tls_dir() + "/revoked").count(old_serial), 1u);
}

}  // namespace
}  // namespace ferry::e2e
