// TLS termination: real handshakes on loopback with certificates the test makes. SNI picks
// the certificate, old TLS versions and unknown hosts are refused, client certificates are
// checked, the plain port redirects, HSTS and X-Forwarded-Proto are set, a changed
// certificate is loaded without dropping an open connection, and the canary split is the
// same over TLS. Attacks: plain HTTP and garbage on the TLS port, a handshake that never
// finishes.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "free_port.h"
#include "router/router.h"
#include "router/test_backend.h"
#include "router/test_certs.h"
#include "router/tls_challenges.h"
#include "router/tls_client.h"
#include "wait_until.h"

namespace ferry {
namespace {

using testing::wait_until;
using testing_router::served_by;
using testing_router::TestBackend;
using testing_router::TestCa;
using testing_router::TestClient;
using testing_router::TlsTestClient;
namespace http = testing_router::http;

// A raw TCP connection for the attacks: sends bytes, reads until the router closes.
class RawConn {
 public:
  explicit RawConn(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{20, 0};  // a router that never closes fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConn() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(std::string_view s) { (void)::send(fd_, s.data(), s.size(), MSG_NOSIGNAL); }
  // Everything the router sends until it closes; `closed` is false when it did not close.
  std::string read_to_close(bool* closed) {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, n);
        continue;
      }
      *closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
      return out;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

class RouterTls : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ca_.emplace(dir_, "server");
    a_ = ca_->issue(dir_, "a", {"a.test", "www.a.test"});
    b_ = ca_->issue(dir_, "b", {"b.test", "*.b.test"});
  }
  void TearDown() override {
    if (router_) router_->stop();
    std::filesystem::remove_all(dir_);
  }

  TlsSpec tls_spec() const {
    TlsSpec t;
    t.certificates = {{a_.first, a_.second}, {b_.first, b_.second}};
    return t;
  }
  void start(TlsSpec tls, std::map<std::string, int> weights = {{"v1", 100}},
             std::shared_ptr<AcmeChallengeBook> acme = nullptr) {
    RouterOptions o;
    o.tls = std::move(tls);
    o.acme_challenges = std::move(acme);
    o.tls_handshake_timeout_ms = handshake_ms_;
    o.tls_reload_interval_ms = 50;
    o.tls_session_tickets = tickets_;
    router_ = std::make_unique<Router>(o);
    Status s = router_->start();
    ASSERT_TRUE(s.ok()) << s.message();
    RouteTable t{std::move(weights), {v1_.route("a", "v1"), v2_.route("b", "v2")}};
    router_->set_table(t);
  }
  TlsTestClient::Options client(const std::string& sni) const {
    TlsTestClient::Options o;
    o.ca_file = ca_->pem;
    o.sni = sni;
    return o;
  }

  std::string dir_;
  std::optional<TestCa> ca_;
  std::pair<std::string, std::string> a_, b_;
  TestBackend v1_{"v1a"}, v2_{"v2a"};
  std::unique_ptr<Router> router_;
  // Generous for every test but the one about the deadline (sanitizer builds under load
  // hand-shake slowly).
  int handshake_ms_ = 10'000;
  int tickets_ = 1;  // RouterOptions::tls_session_tickets
};

// How TicketCountingClient::visit goes about its one request.
struct VisitHow {
  bool resume = false;        // offers the last ticket
  bool wait_first = false;    // reads for 300 ms after the handshake, then sends the request
  std::string after_request;  // more bytes, in a record of their own, after the request
};

// A TLS 1.3 (or, when asked, 1.2) connection made with plain OpenSSL that counts the session
// tickets the router sends (they arrive after the handshake, read with the answer) and keeps the
// last one, so a second connection can offer it to resume.
class TicketCountingClient {
 public:
  explicit TicketCountingClient(const std::string& ca_file, int version = TLS1_3_VERSION)
      : ctx_(SSL_CTX_new(TLS_client_method())) {
    SSL_CTX_set_min_proto_version(ctx_, version);
    SSL_CTX_set_max_proto_version(ctx_, version);
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx_, &TicketCountingClient::on_ticket);
    SSL_CTX_set_app_data(ctx_, this);
  }
  ~TicketCountingClient() {
    if (last_ != nullptr) SSL_SESSION_free(last_);
    SSL_CTX_free(ctx_);
  }
  struct Visit {
    bool ok = false;  // handshake done and an HTTP 200 read to the end
    int tickets = 0;
    int tickets_before_request = 0;  // with `wait_first`: those read before the request
    bool resumed = false;
    bool close_notify = false;  // the answer ended with the router's close_notify
    // The router closed the TCP connection while we sent no close_notify: within 0.9 s
    // (its closing deadline is 1 s), and at all (by our 20 s read timeout).
    bool closed_at_once = false;
    bool closed = false;
  };
  // One GET / with Connection: close on a new connection, read to the router's close.
  Visit visit(uint16_t port, const VisitHow& how = {}) {
    Visit v;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return v;
    }
    SSL* ssl = SSL_new(ctx_);
    SSL_set_tlsext_host_name(ssl, "a.test");
    if (how.resume && last_ != nullptr) SSL_set_session(ssl, last_);
    SSL_set_fd(ssl, fd);
    count_ = 0;
    std::string answer;
    if (SSL_connect(ssl) == 1) {
      if (how.wait_first) {
        timeval shortly{0, 300'000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &shortly, sizeof shortly);
        char none[1];
        (void)SSL_read(ssl, none, sizeof none);  // times out; tickets sent by then are read
        v.tickets_before_request = count_;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      }
      std::string req = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, req.data(), static_cast<int>(req.size()));
      if (!how.after_request.empty())
        SSL_write(ssl, how.after_request.data(), static_cast<int>(how.after_request.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(n));
      v.close_notify = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
      timeval shortly{0, 900'000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &shortly, sizeof shortly);
      ssize_t end = ::recv(fd, buf, sizeof buf, 0);
      v.closed_at_once = end == 0;
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (end < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        end = ::recv(fd, buf, sizeof buf, 0);  // not yet: the full timeout
      v.closed = end == 0 || (end < 0 && errno == ECONNRESET);
      v.resumed = SSL_session_reused(ssl) == 1;
      // A connection freed without close_notify marks its session (the last ticket's) as
      // not resumable.
      SSL_shutdown(ssl);
    }
    v.ok = answer.rfind("HTTP/1.1 200", 0) == 0;
    v.tickets = count_;
    SSL_free(ssl);
    ::close(fd);
    return v;
  }

 private:
  static int on_ticket(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<TicketCountingClient*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    ++self->count_;
    if (self->last_ != nullptr) SSL_SESSION_free(self->last_);
    self->last_ = session;  // ours now (returning 1)
    return 1;
  }
  SSL_CTX* ctx_;
  SSL_SESSION* last_ = nullptr;
  int count_ = 0;
};

TEST_F(RouterTls, SniPicksTheCertificateOfTheRequestedHost) {
  start(tls_spec());
  TlsTestClient a(router_->port(), client("a.test"));
  auto r = a.get("/");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "v1a");
  EXPECT_EQ(a.peer_cn(), "a.test");

  TlsTestClient b(router_->port(), client("x.b.test"));  // the wildcard certificate
  ASSERT_EQ(b.get("/").result_int(), 200);
  EXPECT_EQ(b.peer_cn(), "b.test");

  TlsTestClient www(router_->port(), client("WWW.A.TEST"));  // names are case-insensitive
  ASSERT_EQ(www.get("/").result_int(), 200);
  EXPECT_EQ(www.peer_cn(), "a.test");

  TlsTestClient none(router_->port(), client(""));  // no SNI: the first certificate
  ASSERT_EQ(none.get("/").result_int(), 200);
  EXPECT_EQ(none.peer_cn(), "a.test");
}

TEST_F(RouterTls, AnSniNoCertificateNamesIsRefused) {
  start(tls_spec());
  for (std::string host : {"evil.test", "a.b.b.test", "b.test.evil", "a.test."}) {
    TlsTestClient c(router_->port(), client(host));
    std::string error;
    EXPECT_FALSE(c.connect(&error)) << host;
  }
  TlsTestClient ok(router_->port(), client("a.test"));
  EXPECT_EQ(ok.get("/").result_int(), 200);
  EXPECT_EQ(v1_.requests(), 1);
}

// Clients dialling an address send it as SNI though RFC 6066 forbids it (wrk does): they
// get the first certificate, as a client without SNI does, not unrecognized_name.
TEST_F(RouterTls, AnIpAddressAsSniIsServedAsNoSni) {
  start(tls_spec());
  for (std::string ip : {"127.0.0.1", "::1"}) {
    TlsTestClient::Options o;
    o.sni = ip;
    TlsTestClient c(router_->port(), o);
    ASSERT_EQ(c.get("/").result_int(), 200) << ip;
    EXPECT_EQ(c.peer_cn(), "a.test") << ip;
  }
}

TEST_F(RouterTls, OnlyTls12AndNewerAreServed) {
  start(tls_spec());
  auto old = client("a.test");
  old.max_version = TLS1_1_VERSION;
  TlsTestClient c11(router_->port(), old);
  EXPECT_FALSE(c11.connect());
  // The same client allowed TLS 1.2 gets through: the version alone made the difference.
  auto v12 = client("a.test");
  v12.max_version = TLS1_2_VERSION;
  TlsTestClient c12(router_->port(), v12);
  ASSERT_EQ(c12.get("/").result_int(), 200);
  EXPECT_EQ(c12.version(), "TLSv1.2");
  TlsTestClient c13(router_->port(), client("a.test"));
  ASSERT_EQ(c13.get("/").result_int(), 200);
  EXPECT_EQ(c13.version(), "TLSv1.3");
}

TEST_F(RouterTls, MinVersion13RefusesTls12) {
  TlsSpec t = tls_spec();
  t.min_version = "1.3";
  start(t);
  auto v12 = client("a.test");
  v12.max_version = TLS1_2_VERSION;
  TlsTestClient c12(router_->port(), v12);
  EXPECT_FALSE(c12.connect());
  TlsTestClient c13(router_->port(), client("a.test"));
  EXPECT_EQ(c13.get("/").result_int(), 200);
}

TEST_F(RouterTls, ForwardedProtoIsHttpsWhateverTheClientSays) {
  start(tls_spec());
  TlsTestClient c(router_->port(), client("a.test"));
  auto r = c.get("/headers", {{"X-Forwarded-Proto", "http"}});
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_NE(r.body().find("X-Forwarded-Proto: https\n"), std::string::npos) << r.body();
  EXPECT_EQ(r.body().find("X-Forwarded-Proto: http\n"), std::string::npos) << r.body();
  EXPECT_EQ(r["Strict-Transport-Security"], "");  // HSTS only when asked
}

TEST_F(RouterTls, HstsOnResponsesOverTls) {
  TlsSpec t = tls_spec();
  t.hsts_max_age_s = 31536000;
  t.hsts_include_subdomains = true;
  start(t);
  TlsTestClient c(router_->port(), client("a.test"));
  auto r = c.get("/");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r["Strict-Transport-Security"], "max-age=31536000; includeSubDomains");
}

TEST_F(RouterTls, PlainPortRedirectsToHttps) {
  TlsSpec t = tls_spec();
  t.http_port = testing::free_loopback_port();
  t.redirect = true;
  start(t);
  ASSERT_EQ(router_->http_port(), t.http_port);
  TestClient c(router_->http_port());
  auto r = c.get("/path?q=1", {{"Host", "a.test:8080"}});
  ASSERT_EQ(r.result_int(), 308);
  EXPECT_EQ(r["Location"], "https://a.test:" + std::to_string(router_->port()) + "/path?q=1");
  // Kept alive: the next request on the same connection is answered too.
  r = c.get("/other", {{"Host", "[::1]:80"}});
  ASSERT_EQ(r.result_int(), 308);
  EXPECT_EQ(r["Location"], "https://[::1]:" + std::to_string(router_->port()) + "/other");
  EXPECT_EQ(v1_.requests(), 0);  // nothing reached a backend
}

TEST_F(RouterTls, RedirectRefusesAHostThatWouldBendTheLocation) {
  TlsSpec t = tls_spec();
  t.http_port = testing::free_loopback_port();
  t.redirect = true;
  start(t);
  for (std::string host : {"evil.test/@a.test", "a.test\\@evil", "a.test?x", "", "[::1"}) {
    TestClient c(router_->http_port());
    auto r = c.get("/", {{"Host", host}});
    EXPECT_EQ(r.result_int(), 400) << host << " → " << r["Location"];
    EXPECT_EQ(r["Location"], "") << host;
  }
  // An absolute-form target does not choose the redirect's host.
  TestClient c(router_->http_port());
  auto r = c.get("http://evil.test/x", {{"Host", "a.test"}});
  ASSERT_EQ(r.result_int(), 308);
  EXPECT_EQ(r["Location"], "https://a.test:" + std::to_string(router_->port()) + "/");
}

TEST_F(RouterTls, PlainPortWithoutRedirectProxies) {
  TlsSpec t = tls_spec();
  t.http_port = testing::free_loopback_port();
  start(t);
  TestClient c(router_->http_port());
  auto r = c.get("/headers", {{"X-Forwarded-Proto", "https"}});
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body().find("X-Forwarded-Proto"), std::string::npos) << r.body();
}

// ACME HTTP-01 (tls.acme): the plain port answers a published token's key authorization
// before redirecting, and nothing else.
TEST_F(RouterTls, AcmeChallengeIsAnsweredOnThePlainPortBeforeTheRedirect) {
  auto book = std::make_shared<AcmeChallengeBook>();
  const std::string token = "tok_abcdefghijklmnop-123";
  ASSERT_TRUE(book->publish(token, token + ".thumbprint"));
  TlsSpec t = tls_spec();
  t.http_port = testing::free_loopback_port();
  t.redirect = true;
  start(t, {{"v1", 100}}, book);
  {
    TestClient c(router_->http_port());
    auto r = c.get("/.well-known/acme-challenge/" + token, {{"Host", "a.test"}});
    ASSERT_EQ(r.result_int(), 200);
    EXPECT_EQ(r.body(), token + ".thumbprint");
  }
  {
    TestClient c(router_->http_port());  // a query string does not change the token
    auto r = c.get("/.well-known/acme-challenge/" + token + "?x=1", {{"Host", "a.test"}});
    ASSERT_EQ(r.result_int(), 200);
  }
  {
    TestClient c(router_->http_port());  // other paths still redirect
    EXPECT_EQ(c.get("/", {{"Host", "a.test"}}).result_int(), 308);
  }
  // Withdrawn once the CA validated: 404, never the backend.
  book->withdraw(token);
  TestClient c(router_->http_port());
  EXPECT_EQ(c.get("/.well-known/acme-challenge/" + token, {{"Host", "a.test"}}).result_int(), 404);
  EXPECT_EQ(v1_.requests(), 0);
}

// Attacker: tokens that are not base64url (traversal, encoding tricks, oversize), the TLS
// port, other methods: no key authorization leaks and the book is never consulted wrongly.
TEST_F(RouterTls, AcmeChallengeAttacksGetNothing) {
  auto book = std::make_shared<AcmeChallengeBook>();
  const std::string token = "tok_abcdefghijklmnop-123";
  ASSERT_TRUE(book->publish(token, "secret-ish.answer"));
  EXPECT_FALSE(book->publish("../../etc/passwd/aaaaaaaa", "x"));
  EXPECT_FALSE(book->publish("short", "x"));
  EXPECT_FALSE(book->publish(std::string(300, 'a'), "x"));
  TlsSpec t = tls_spec();
  t.http_port = testing::free_loopback_port();
  start(t, {{"v1", 100}}, book);
  for (const std::string& path : std::vector<std::string>{
           "/.well-known/acme-challenge/", "/.well-known/acme-challenge/../" + token,
           "/.well-known/acme-challenge/" + token + "/x",
           "/.well-known/acme-challenge/%74ok_abcdefghijklmnop-123",
           "/.well-known/acme-challenge/" + std::string(5000, 'a'),
           "/.well-known/acme-challenge/tok_abcdefghijklmnop-12"}) {
    TestClient c(router_->http_port());
    auto r = c.get(path, {{"Host", "a.test"}});
    EXPECT_EQ(r.result_int(), 404) << path;
    EXPECT_EQ(r.body().find("secret-ish"), std::string::npos) << path;
  }
  // Over TLS the challenge path is the app's own: proxied to the backend, not answered.
  TlsTestClient tls(router_->port(), client("a.test"));
  auto r = tls.get("/.well-known/acme-challenge/" + token);
  EXPECT_EQ(r.body().find("secret-ish"), std::string::npos);
  EXPECT_EQ(v1_.requests(), 1);
}

TEST_F(RouterTls, ChangedCertificateIsLoadedWithoutDroppingOpenConnections) {
  start(tls_spec());
  TlsTestClient before(router_->port(), client("a.test"));
  ASSERT_EQ(before.get("/").result_int(), 200);
  EXPECT_EQ(before.peer_cn(), "a.test");
  ca_->issue(dir_, "a", {"a.test", "www.a.test"}, -3600, 86400, 99, "a.test renewed");
  ASSERT_TRUE(wait_until([&] { return router_->tls_reloads() >= 1; }));
  EXPECT_EQ(router_->tls_error(), "");
  // The keep-alive connection opened before the reload goes on (no reconnect in get()).
  for (int i = 0; i < 3; ++i) ASSERT_EQ(before.get("/").result_int(), 200);
  EXPECT_EQ(before.peer_cn(), "a.test");
  TlsTestClient after(router_->port(), client("a.test"));
  ASSERT_EQ(after.get("/").result_int(), 200);
  EXPECT_EQ(after.peer_cn(), "a.test renewed");
}

TEST_F(RouterTls, AnIdleConnectionGivesBackItsRecordBuffersAndServesOn) {
  start(tls_spec());
  TlsTestClient c(router_->port(), client("a.test"));
  ASSERT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(router_->idle_trims(), 0u) << "trimmed before it was idle for a second";
  // A second after it went idle, waiting for its next request, it frees them...
  ASSERT_TRUE(wait_until([&] { return router_->idle_trims() >= 1; }));
  // ...and the same connection (no reconnect in get()) serves on with new ones.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(router_->connections(), 1);
}

TEST_F(RouterTls, ACertificateThatFailsToLoadLeavesTheOldOne) {
  start(tls_spec());
  // The key of another certificate: the pair does not match.
  auto other = ca_->issue(dir_, "other", {"a.test"});
  std::filesystem::copy_file(other.second, a_.second,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(wait_until([&] { return !router_->tls_error().empty(); }));
  EXPECT_NE(router_->tls_error().find("does not match"), std::string::npos) << router_->tls_error();
  EXPECT_EQ(router_->tls_reloads(), 0u);
  // Retried at every tick, counted once for this set of files (the status and /metrics
  // report it: ferry_router_tls_reload_failures_total).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(router_->tls_reload_failures(), 1u);
  TlsTestClient c(router_->port(), client("a.test"));
  ASSERT_EQ(c.get("/").result_int(), 200);
  EXPECT_EQ(c.peer_cn(), "a.test");
}

TEST_F(RouterTls, StartRefusesCertificatesItCannotLoad) {
  TlsSpec missing = tls_spec();
  missing.certificates[0].cert_file = dir_ + "/nope.crt";
  Router r1([&] {
    RouterOptions o;
    o.tls = missing;
    return o;
  }());
  Status s = r1.start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nope.crt"), std::string::npos) << s.message();

  TlsSpec mismatched = tls_spec();
  mismatched.certificates[0].key_file = b_.second;
  Router r2([&] {
    RouterOptions o;
    o.tls = mismatched;
    return o;
  }());
  s = r2.start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
}

TEST_F(RouterTls, ClientCertificateRequiredWhenClientCaIsSet) {
  TestCa clients(dir_, "clients");
  TestCa strangers(dir_, "strangers");
  auto good = clients.issue(dir_, "alice", {"alice"});
  auto bad = strangers.issue(dir_, "mallory", {"mallory"});
  TlsSpec t = tls_spec();
  t.client_ca_file = clients.pem;
  start(t);

  TlsTestClient anonymous(router_->port(), client("a.test"));
  EXPECT_EQ(anonymous.get("/").result_int(), 599);
  auto o = client("a.test");
  o.cert_file = bad.first;
  o.key_file = bad.second;
  TlsTestClient stranger(router_->port(), o);
  EXPECT_EQ(stranger.get("/").result_int(), 599);
  EXPECT_EQ(v1_.requests(), 0);

  o.cert_file = good.first;
  o.key_file = good.second;
  TlsTestClient alice(router_->port(), o);
  EXPECT_EQ(alice.get("/").result_int(), 200);
  EXPECT_EQ(v1_.requests(), 1);
}

TEST_F(RouterTls, CanarySplitIsTheSameOverTls) {
  start(tls_spec(), {{"v1", 90}, {"v2", 10}});
  TlsTestClient c(router_->port(), client("a.test"));
  std::map<std::string, int> got;
  for (int i = 0; i < 100; ++i) {
    auto r = c.get("/");
    ASSERT_EQ(r.result_int(), 200);
    ++got[served_by(r)];
  }
  EXPECT_EQ(got["v1"], 90);
  EXPECT_EQ(got["v2"], 10);
  for (const auto& s : router_->stats()) EXPECT_EQ(s.requests, s.release == "v1" ? 90u : 10u);
}

TEST_F(RouterTls, PlainHttpOnTheTlsPortGetsNoHttpAnswer) {
  start(tls_spec());
  RawConn raw(router_->port());
  ASSERT_TRUE(raw.connected());
  raw.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  bool closed = false;
  std::string got = raw.read_to_close(&closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(got.rfind("HTTP/", 0), 0u) << got;
  EXPECT_EQ(v1_.requests(), 0);
  TlsTestClient c(router_->port(), client("a.test"));
  EXPECT_EQ(c.get("/").result_int(), 200);
}

TEST_F(RouterTls, GarbageOnTheTlsPortIsClosed) {
  start(tls_spec());
  RawConn raw(router_->port());
  ASSERT_TRUE(raw.connected());
  std::string junk("\x16\x03\x01\xff\xff", 5);
  junk += std::string(300, '\xaa');
  raw.send(junk);
  bool closed = false;
  raw.read_to_close(&closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(wait_until([&] { return router_->connections() == 0; }));
}

TEST_F(RouterTls, AHandshakeThatNeverFinishesIsClosed) {
  handshake_ms_ = 400;
  start(tls_spec());
  RawConn slow(router_->port());
  ASSERT_TRUE(slow.connected());
  slow.send(std::string("\x16\x03\x01", 3));  // the start of a record header, then nothing
  bool closed = false;
  slow.read_to_close(&closed);
  EXPECT_TRUE(closed);  // closed by the handshake timeout (400 ms), not the 20 s read bound
  EXPECT_TRUE(wait_until([&] { return router_->connections() == 0; }));
  TlsTestClient c(router_->port(), client("a.test"));
  EXPECT_EQ(c.get("/").result_int(), 200);
}

// OpenSSL sends two TLS 1.3 session tickets per full handshake; the router sends one (a
// client resumes with one; the second cost every handshake work for nothing), and that one
// resumes the session.
TEST_F(RouterTls, OneSessionTicketPerHandshakeAndItResumes) {
  start(tls_spec());
  TicketCountingClient c(ca_->pem);
  auto first = c.visit(router_->port());
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.tickets, 1);
  EXPECT_FALSE(first.resumed);
  auto again = c.visit(router_->port(), {.resume = true});
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.resumed);
}

// The ticket follows the handshake at once, before the client has asked for anything: the
// router's first flight after the client's Finished carries the ACK of that Finished. Were
// the ticket held back to the first answer, nothing would go out until the kernel's
// delayed-ACK timer (40 ms), and a client with Nagle's algorithm on holds its request
// behind that ACK.
TEST_F(RouterTls, TheTicketFollowsTheHandshakeBeforeTheFirstRequest) {
  start(tls_spec());
  TicketCountingClient c(ca_->pem);
  auto first = c.visit(router_->port(), {.wait_first = true});
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.tickets_before_request, 1);
  EXPECT_EQ(first.tickets, 1);
}

// An answer that ends the connection ends with close_notify, and the router then closes
// without waiting for the client's own close_notify (TLS does not require it of the side
// that closes first; nginx does the same): the client, which sends none, reads the end of
// the TCP stream long before the router's one-second closing deadline would have ended it.
TEST_F(RouterTls, AClosingAnswerEndsWithCloseNotifyAndTheRouterClosesAtOnce) {
  start(tls_spec());
  TicketCountingClient c(ca_->pem);
  auto v = c.visit(router_->port());
  ASSERT_TRUE(v.ok);
  EXPECT_TRUE(v.close_notify);
  EXPECT_TRUE(v.closed_at_once) << "the router waited for our close_notify";
}

// A client that keeps sending after its closing request (bytes the router will never
// answer) and never says goodbye cannot hold the connection: it still gets its whole answer
// and close_notify, and the router closes the connection (it reads the client's bytes
// while it closes, bounded by its closing deadline, rather than closing on them unread).
TEST_F(RouterTls, BytesAfterAClosingRequestDoNotKeepTheConnectionOpen) {
  start(tls_spec());
  TicketCountingClient c(ca_->pem);
  auto v = c.visit(router_->port(), {.after_request = std::string(8000, 'x')});
  ASSERT_TRUE(v.ok);
  EXPECT_TRUE(v.close_notify);
  EXPECT_TRUE(v.closed);
}

// The router keeps no session store when it sends tickets (a TLS 1.2 handshake flood fills
// no cache): a TLS 1.2 client still resumes, from its ticket, on a new connection.
TEST_F(RouterTls, ATls12ClientResumesFromItsTicket) {
  start(tls_spec());
  TicketCountingClient c(ca_->pem, TLS1_2_VERSION);
  auto first = c.visit(router_->port());
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.tickets, 1);
  EXPECT_FALSE(first.resumed);
  for (int i = 0; i < 3; ++i) {
    auto again = c.visit(router_->port(), {.resume = true});
    ASSERT_TRUE(again.ok) << i;
    EXPECT_TRUE(again.resumed) << i;
  }
}

// tls_session_tickets 0 (what bench/router/tls.sh sets to match peers with tickets off):
// no ticket, so nothing to resume with.
TEST_F(RouterTls, NoSessionTicketsWhenTheyAreOff) {
  tickets_ = 0;
  start(tls_spec());
  TicketCountingClient c(ca_->pem);
  auto first = c.visit(router_->port());
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.tickets, 0);
  auto again = c.visit(router_->port(), {.resume = true});
  ASSERT_TRUE(again.ok);
  EXPECT_FALSE(again.resumed);
}

}  // namespace
}  // namespace ferry
