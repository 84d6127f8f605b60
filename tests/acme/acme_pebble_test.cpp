// ACME end to end against Debian's pebble (the ACME test server), all on loopback: the
// agent orders a certificate for an app with tls.acme, pebble's validation authority
// fetches the HTTP-01 answer from the app's router on its plain port (pebble's httpPort is
// that port; pebble-challtestsrv answers pebble's DNS queries with 127.0.0.1), and the
// router then serves the issued chain over TLS. Then a renewal (a fake wall clock moved past
// 2/3 of the lifetime) and a failed challenge (the host resolves where no router listens),
// reported in the status and /metrics, and recovered from.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <filesystem>
#include <fstream>

#include "acme/certs.h"
#include "acme/transport.h"
#include "agent/agent.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/spawn.h"
#include "free_port.h"
#include "router/test_certs.h"
#include "test_skip.h"
#include "wait_until.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace tr = ferry::testing_router;
using namespace std::chrono_literals;

std::string pem_of_cert(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* d = nullptr;
  long n = BIO_get_mem_data(bio, &d);
  std::string s(d, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

std::string pem_of_key(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* d = nullptr;
  long n = BIO_get_mem_data(bio, &d);
  std::string s(d, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

bool on_path(const char* tool) {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"})
    if (access((std::string(dir) + tool).c_str(), X_OK) == 0) return true;
  return false;
}

// One pebble and one pebble-challtestsrv for the whole suite (pebble takes seconds to make
// its CA), started and stopped by PID.
struct PebbleRig {
  fs::path dir;
  std::string ca_bundle;  // the CA of pebble's own HTTPS certificate
  uint16_t acme_port = 0, mgmt_port = 0, dns_port = 0, dns_mgmt_port = 0;
  uint16_t http_port = 0;  // pebble validates HTTP-01 here: the router's plain port
  pid_t pebble = -1, challtestsrv = -1;
  std::string error;

  std::string directory() const {
    return "https://localhost:" + std::to_string(acme_port) + "/dir";
  }

  bool start() {
    dir = fs::temp_directory_path() / ("ferry-pebble-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto ca_key = tr::make_test_key();
    auto ca = tr::make_test_cert("ferry test CA", {}, ca_key.get(), nullptr, nullptr, true);
    auto srv_key = tr::make_test_key();
    auto srv = tr::make_test_cert("localhost", {"localhost"}, srv_key.get(), ca.get(), ca_key.get(),
                                  false);
    ca_bundle = (dir / "ca.pem").string();
    write_file(ca_bundle, pem_of_cert(ca.get()));
    write_file(dir / "srv.pem", pem_of_cert(srv.get()));
    write_file(dir / "srv.key", pem_of_key(srv_key.get()));
    acme_port = testing::free_loopback_port();
    mgmt_port = testing::free_loopback_port();
    dns_port = testing::free_loopback_port();
    dns_mgmt_port = testing::free_loopback_port();
    http_port = testing::free_loopback_port();
    Json cfg = {{"pebble",
                 {{"listenAddress", "127.0.0.1:" + std::to_string(acme_port)},
                  {"managementListenAddress", "127.0.0.1:" + std::to_string(mgmt_port)},
                  {"certificate", (dir / "srv.pem").string()},
                  {"privateKey", (dir / "srv.key").string()},
                  {"httpPort", http_port},
                  {"tlsPort", testing::free_loopback_port()},
                  {"ocspResponderURL", ""},
                  {"externalAccountBindingRequired", false}}}};
    write_file(dir / "pebble.json", cfg.dump());
    const std::string dns = "127.0.0.1:" + std::to_string(dns_port);
    SpawnOptions c;
    // No AAAA answers: pebble's validator dials the first address, and the router listens
    // on 127.0.0.1.
    c.argv = {"pebble-challtestsrv",
              "-defaultIPv4",
              "127.0.0.1",
              "-defaultIPv6",
              "",
              "-dns01",
              dns,
              "-http01",
              "",
              "-https01",
              "",
              "-tlsalpn01",
              "",
              "-management",
              "127.0.0.1:" + std::to_string(dns_mgmt_port)};
    auto cpid = spawn(c);
    if (!cpid.ok()) return fail("pebble-challtestsrv: " + cpid.status().message());
    challtestsrv = *cpid;
    SpawnOptions p;
    p.argv = {"pebble",     "-config", (dir / "pebble.json").string(),
              "-dnsserver", dns,       "-strict=false"};
    // No random validation sleeps; every order validates afresh (a renewal proves the
    // router answers again); 5% of nonces are still refused, so badNonce retries run.
    p.env = {{"PEBBLE_VA_NOSLEEP", "1"}, {"PEBBLE_AUTHZREUSE", "0"}};
    int log_fd =
        ::open((dir / "pebble.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    p.stdout_fd = log_fd;
    auto ppid = spawn(p);
    if (log_fd >= 0) ::close(log_fd);
    if (!ppid.ok()) return fail("pebble: " + ppid.status().message());
    pebble = *ppid;
    auto t = acme::make_curl_transport({.ca_bundle_file = ca_bundle, .timeout_ms = 2000});
    // pebble makes an RSA root and intermediate first: seconds, more under sanitizers.
    bool up = testing::wait_until(
        [&] {
          auto r = t->exchange("GET", directory(), "", "");
          return r.ok() && r->status == 200;
        },
        120s, 100ms);
    if (!up) return fail("pebble did not serve its directory within 120 s");
    return true;
  }

  bool fail(std::string why) {
    error = std::move(why);
    return false;
  }

  // pebble-challtestsrv's mock DNS: `host` resolves to `ip` (or the default again).
  bool set_a(const std::string& host, const std::string& ip) {
    const std::string base = "http://127.0.0.1:" + std::to_string(dns_mgmt_port);
    Json body = ip.empty() ? Json{{"host", host}} : Json{{"host", host}, {"addresses", {ip}}};
    std::string cmd = "curl -sf -X POST -d '" + body.dump() + "' " + base +
                      (ip.empty() ? "/clear-a" : "/add-a") + " >/dev/null";
    return std::system(cmd.c_str()) == 0;
  }

  // pebble's root (the issued chains lead to it).
  std::string root_pem() const {
    auto t = acme::make_curl_transport({.ca_bundle_file = ca_bundle, .timeout_ms = 5000});
    auto r =
        t->exchange("GET", "https://localhost:" + std::to_string(mgmt_port) + "/roots/0", "", "");
    return r.ok() && r->status == 200 ? r->body : std::string();
  }

  void stop() {
    for (pid_t* p : {&pebble, &challtestsrv})
      if (*p > 0) {
        ::kill(*p, SIGTERM);
        int st = 0;
        ::waitpid(*p, &st, 0);
        *p = -1;
      }
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// The leaf certificate a TLS client is shown for `sni` on 127.0.0.1:`port`, and whether
// its chain verifies against `root_pem` (when given).
struct Served {
  std::string serial;
  std::vector<std::string> names;
  bool placeholder = false;
  bool verified = false;
};

Served served_cert(uint16_t port, const std::string& sni, const std::string& root_pem = {}) {
  Served out;
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  if (!root_pem.empty()) {
    ctx.add_certificate_authority(asio::buffer(root_pem));
    ctx.set_verify_mode(asio::ssl::verify_peer);
  }
  asio::ssl::stream<asio::ip::tcp::socket> s(ioc, ctx);
  SSL_set_tlsext_host_name(s.native_handle(), sni.c_str());
  if (!root_pem.empty()) SSL_set1_host(s.native_handle(), sni.c_str());
  boost::system::error_code ec;
  s.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return out;
  s.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return out;
  out.verified = !root_pem.empty();
  X509* leaf = SSL_get1_peer_certificate(s.native_handle());
  if (leaf == nullptr) return out;
  auto info = acme::read_cert_info(pem_of_cert(leaf));
  X509_free(leaf);
  if (info.ok()) {
    out.serial = info->serial;
    out.names = info->names;
    out.placeholder = info->placeholder;
  }
  s.shutdown(ec);
  return out;
}

class AcmePebble : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!on_path("pebble") || !on_path("pebble-challtestsrv")) return;
    rig_ = new PebbleRig();
    if (!rig_->start()) {
      start_error_ = rig_->error;
      rig_->stop();
      delete rig_;
      rig_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    if (rig_) rig_->stop();
    delete rig_;
    rig_ = nullptr;
  }

  void SetUp() override {
    if (rig_ == nullptr) {
      if (start_error_.empty())
        FERRY_SKIP_OR_FAIL("pebble is not installed (apt-get install pebble)");
      FAIL() << start_error_;
    }
    dir_ = fs::temp_directory_path() /
           ("ferry-acme-agent-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    clock_.set(std::chrono::system_clock::now());
  }
  void TearDown() override {
    if (agent_) agent_->stop(true);
    agent_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Agent& start_agent() {
    AgentOptions o;
    o.data_dir = dir_.string();
    o.state_key = std::string(32, 'K');
    o.acme_clock = &clock_;
    o.acme_retry_min_ms = 300;
    o.acme_poll_interval_ms = 100;
    agent_ = std::make_unique<Agent>(o);
    EXPECT_TRUE(agent_->start().ok());
    return *agent_;
  }

  AppDesiredState app(const std::vector<std::string>& hosts) {
    AppDesiredState d;
    d.app = "web.production";
    d.generation = 1;
    d.listen_port = testing::free_loopback_port();
    d.router.tls.acme.hosts = hosts;
    d.router.tls.acme.email = "ops@example.com";
    d.router.tls.acme.directory = rig_->directory();
    d.router.tls.acme.ca_bundle_file = rig_->ca_bundle;
    d.router.tls.http_port = rig_->http_port;
    return d;
  }

  EdgeStatus edge() {
    auto s = agent_->app_status("web.production");
    return s.ok() ? s->edge : EdgeStatus{};
  }

  static PebbleRig* rig_;
  static std::string start_error_;
  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<Agent> agent_;
};

PebbleRig* AcmePebble::rig_ = nullptr;
std::string AcmePebble::start_error_;

int file_mode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

TEST_F(AcmePebble, IssuesOverHttp01ServesTheChainAndRenewsAtTwoThirds) {
  Agent& agent = start_agent();
  AppDesiredState d = app({"app.ferry.test", "www.ferry.test"});
  ASSERT_TRUE(agent.put_app(d).ok());
  const std::string root = rig_->root_pem();
  ASSERT_FALSE(root.empty());

  ASSERT_TRUE(testing::wait_until([&] { return edge().acme_state != "pending"; }, 120s, 50ms));
  EdgeStatus e = edge();
  ASSERT_EQ(e.acme_state, "valid") << e.acme_error;
  EXPECT_EQ(e.acme_issued, 1u);
  // The router reloads the bundle: the issued chain verifies against pebble's root for both
  // names (the placeholder served until then does not).
  Served first;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        first = served_cert(d.listen_port, "app.ferry.test", root);
        return first.verified && !first.placeholder;
      },
      30s, 100ms));
  EXPECT_EQ(first.names, (std::vector<std::string>{"app.ferry.test", "www.ferry.test"}));
  EXPECT_TRUE(served_cert(d.listen_port, "www.ferry.test", root).verified);

  // Renewal time: 2/3 of the lifetime, jittered by at most lifetime/90.
  auto bundle = dir_ / "acme" / "certs" / "web.production" / "bundle.pem";
  std::ifstream in(bundle);
  std::string pem((std::istreambuf_iterator<char>(in)), {});
  auto info = acme::read_cert_info(pem.substr(pem.find("-----BEGIN CERTIFICATE-----")));
  ASSERT_TRUE(info.ok());
  const int64_t life = info->not_after_ms - info->not_before_ms;
  EXPECT_NEAR(static_cast<double>(e.acme_renew_at_ms - info->not_before_ms),
              static_cast<double>(life) * 2 / 3, static_cast<double>(life) / 90 + 1000);
  EXPECT_EQ(e.cert_not_after_ms, info->not_after_ms);
  // Secrets 0600, their folders 0700.
  EXPECT_EQ(file_mode(bundle), 0600);
  EXPECT_EQ(file_mode(dir_ / "acme"), 0700);
  int keys = 0;
  for (const auto& f : fs::directory_iterator(dir_ / "acme"))
    if (f.path().filename().string().rfind("account-", 0) == 0) {
      ++keys;
      EXPECT_EQ(file_mode(f.path()), 0600);
    }
  EXPECT_EQ(keys, 1);

  // Nothing happens before the renewal time…
  clock_.set(from_unix_ms(e.acme_renew_at_ms - 60'000));
  agent.acme().poke();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(edge().acme_issued, 1u);
  // …and a new certificate after it, through a new HTTP-01 validation (no authz reuse).
  clock_.set(from_unix_ms(e.acme_renew_at_ms + 1000));
  agent.acme().poke();
  ASSERT_TRUE(testing::wait_until([&] { return edge().acme_issued == 2; }, 120s, 50ms))
      << edge().acme_error;
  Served renewed;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        renewed = served_cert(d.listen_port, "app.ferry.test", root);
        return renewed.verified && renewed.serial != first.serial && !renewed.serial.empty();
      },
      30s, 100ms));
  EXPECT_EQ(edge().acme_state, "valid");
  EXPECT_EQ(edge().acme_failures, 0u);
}

TEST_F(AcmePebble, FailedChallengeIsReportedAndRetriedUntilItPasses) {
  // The CA resolves the host to 127.0.0.2, where no router listens: validation fails.
  ASSERT_TRUE(rig_->set_a("bad.ferry.test", "127.0.0.2"));
  Agent& agent = start_agent();
  AppDesiredState d = app({"bad.ferry.test"});
  ASSERT_TRUE(agent.put_app(d).ok());
  ASSERT_TRUE(testing::wait_until([&] { return edge().acme_state == "failing"; }, 120s, 50ms));
  EdgeStatus e = edge();
  EXPECT_GE(e.acme_failures, 1u);
  EXPECT_NE(e.acme_error.find("bad.ferry.test"), std::string::npos) << e.acme_error;
  EXPECT_GT(e.acme_next_attempt_ms, 0);
  EXPECT_EQ(e.acme_issued, 0u);
  // Until then the router serves its placeholder (clients get a certificate, not a refusal).
  Served s = served_cert(d.listen_port, "bad.ferry.test");
  EXPECT_TRUE(s.placeholder);
  // /metrics says so: the alert rules key on these.
  std::string m = agent.metrics().expose();
  EXPECT_NE(m.find("ferry_acme_certificate_failing{app=\"web.production\"} 1"), std::string::npos)
      << m.substr(0, 4000);
  EXPECT_NE(m.find("ferry_acme_order_failures_total{app=\"web.production\"}"), std::string::npos);

  // DNS fixed: a retry (backoff from 300 ms, moved on by the clock) succeeds.
  ASSERT_TRUE(rig_->set_a("bad.ferry.test", ""));
  ASSERT_TRUE(testing::wait_until(
      [&] {
        clock_.advance(std::chrono::minutes(1));
        agent.acme().poke();
        return edge().acme_state == "valid";
      },
      120s, 200ms))
      << edge().acme_error;
  EXPECT_EQ(edge().acme_error, "");
  const std::string root = rig_->root_pem();
  ASSERT_TRUE(testing::wait_until(
      [&] { return served_cert(d.listen_port, "bad.ferry.test", root).verified; }, 30s, 100ms));
}

}  // namespace
}  // namespace ferry
