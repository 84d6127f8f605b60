// Mutual TLS between ferry's own ends (common/tls.h) on a real HttpServer and HttpClient
// over loopback: the server answers only a client with a certificate of its CA that is not
// revoked; the client talks only to a server whose certificate is of its CA and carries the
// pinned name. Every refusal is checked from the attacker's side: no HTTP answer comes back.
#include "common/tls.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <fstream>

#include "common/http_client.h"
#include "common/http_server.h"

namespace ferry {
namespace {

struct Issued {
  TlsIdentity id;
  std::string serial;
};

// A certificate for `cn` from `ca`, as an identity that trusts `trust`.
Issued issue(const CertAuthority& ca, const std::string& cn, const CertAuthority& trust) {
  auto key = make_private_key();
  EXPECT_TRUE(key.ok());
  auto csr = make_csr(*key, cn);
  EXPECT_TRUE(csr.ok());
  auto cert = sign_csr(ca, *csr, cn, 30);
  EXPECT_TRUE(cert.ok()) << cert.status().message();
  Issued out;
  out.id = TlsIdentity{*cert, *key, trust.cert_pem, {}};
  out.serial = cert_serial(*cert).value();
  return out;
}

class TlsHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = make_ca("ferry test CA", 30).value();
    other_ca_ = make_ca("someone else's CA", 30).value();
    agent_ = issue(ca_, "agent-a", ca_);
    server_client_ = issue(ca_, "ferry-server", ca_);
  }
  // Starts the agent-side server; `revoked` are refused client serials.
  void start(std::set<std::string> revoked = {}, std::string revoked_path = "") {
    TlsIdentity id = agent_.id;
    id.revoked_serials = std::move(revoked);
    id.revoked_path = std::move(revoked_path);
    auto ctx = TlsContext::create(TlsContext::Role::kServer, id);
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    HttpServerOptions o;
    o.tls = *ctx;
    o.read_timeout_ms = 3000;
    http_ = std::make_unique<HttpServer>(o);
    http_->route("GET", "/v1/whoami", [](HttpRequest& r) {
      return HttpResponse::json(Json{{"peer", r.attrs["tls_peer"]}});
    });
    ASSERT_TRUE(http_->start().ok());
  }
  Result<HttpResponse> get(const TlsIdentity& id, const std::string& pin = "agent-a") {
    auto ctx = TlsContext::create(TlsContext::Role::kClient, id, pin);
    if (!ctx.ok()) return ctx.status();
    HttpClientOptions o;
    o.timeout_ms = 3000;
    o.tls = *ctx;
    HttpClient c(Endpoint{"127.0.0.1", http_->port()}, o);
    return c.request("GET", "/v1/whoami");
  }
  void TearDown() override {
    if (http_) http_->stop();
  }

  CertAuthority ca_, other_ca_;
  Issued agent_, server_client_;
  std::unique_ptr<HttpServer> http_;
};

TEST_F(TlsHttp, AClientWithACertificateOfTheCaIsAnsweredAndNamed) {
  start();
  auto r = get(server_client_.id);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"peer\":\"ferry-server\""), std::string::npos) << r->body;
}

TEST_F(TlsHttp, AClientWithoutACertificateGetsNoAnswer) {
  start();
  // Plain HTTP to the TLS port.
  HttpClient plain(Endpoint{"127.0.0.1", http_->port()}, HttpClientOptions{3000, 1 << 20});
  auto r = plain.request("GET", "/v1/whoami");
  EXPECT_FALSE(r.ok() && r->status == 200);
  // TLS with no client certificate at all: whatever the handshake says on the client's
  // side (with TLS 1.3 the server judges the client after the client thinks it is done),
  // no HTTP answer comes back.
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  asio::io_context ioc;
  asio::ssl::context bare(asio::ssl::context::tls_client);
  bare.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> s(ioc, bare);
  beast::get_lowest_layer(s).expires_after(std::chrono::seconds(5));
  beast::get_lowest_layer(s).connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), http_->port()));
  beast::error_code ec;
  s.handshake(asio::ssl::stream_base::client, ec);
  std::string answer;
  if (!ec) {
    const std::string req = "GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(s, asio::buffer(req), ec);
    char buf[512];
    const size_t n = s.read_some(asio::buffer(buf), ec);
    answer.assign(buf, n);
  }
  EXPECT_TRUE(ec) << "the server answered a client without a certificate: " << answer;
  EXPECT_EQ(answer.find("ferry-server"), std::string::npos);
}

TEST_F(TlsHttp, AClientWithASelfMadeCertificateOfTheSameNameIsRefused) {
  start();
  auto self_signed = make_ca("ferry-server", 30).value();  // a key and cert the CA never saw
  TlsIdentity forged = server_client_.id;
  forged.cert_pem = self_signed.cert_pem;
  forged.key_pem = self_signed.key_pem;
  auto r = get(forged);
  EXPECT_FALSE(r.ok()) << r->status << " " << r->body;
}

TEST_F(TlsHttp, AClientCertificateFromAnotherCaIsRefused) {
  start();
  Issued stranger = issue(other_ca_, "ferry-server", ca_);  // same name, wrong issuer
  auto r = get(stranger.id);
  EXPECT_FALSE(r.ok()) << r->status << " " << r->body;
}

TEST_F(TlsHttp, ARevokedClientCertificateIsRefusedAndAnotherStillAnswered) {
  start({server_client_.serial});
  auto r = get(server_client_.id);
  EXPECT_FALSE(r.ok()) << r->status << " " << r->body;
  Issued fresh = issue(ca_, "ferry-server", ca_);
  auto r2 = get(fresh.id);
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_EQ(r2->status, 200);
}

// A revocation list file in a fresh folder; removed at the end.
struct RevokedListFile {
  RevokedListFile() {
    dir = std::filesystem::temp_directory_path() /
          ("ferry-tls-revoked-" + std::to_string(getpid()) + "-" + std::to_string(++count));
    std::filesystem::create_directories(dir);
    path = (dir / "revoked").string();
  }
  ~RevokedListFile() { std::filesystem::remove_all(dir); }
  // Written the way Enrollment::save writes it: a new file renamed over the old one.
  void write(const std::string& text) const {
    std::ofstream(path + ".tmp") << text;
    std::filesystem::rename(path + ".tmp", path);
  }
  std::filesystem::path dir;
  std::string path;
  static inline int count = 0;
};

TEST_F(TlsHttp, ACertificateRevokedWhileTheServerRunsIsRefusedFromTheNextHandshake) {
  RevokedListFile list;  // does not exist yet: nothing revoked
  start({}, list.path);
  ASSERT_TRUE(get(server_client_.id).ok());
  list.write("# revoked by ferry agents revoke\n" + server_client_.serial + "\n");
  auto r = get(server_client_.id);
  EXPECT_FALSE(r.ok()) << "revoked while running, still answered: " << r->status;
  Issued fresh = issue(ca_, "ferry-server", ca_);
  auto r2 = get(fresh.id);
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  // Appended in place (same inode, another size): read again too.
  std::ofstream(list.path, std::ios::app) << fresh.serial << "\n";
  EXPECT_FALSE(get(fresh.id).ok());
}

TEST_F(TlsHttp, AClientRefusesAServerWhoseCertificateWasRevokedAfterTheContextWasMade) {
  start();
  RevokedListFile list;
  TlsIdentity id = server_client_.id;
  id.revoked_path = list.path;
  auto ctx = TlsContext::create(TlsContext::Role::kClient, id, "agent-a");
  ASSERT_TRUE(ctx.ok());
  HttpClient c(Endpoint{"127.0.0.1", http_->port()}, HttpClientOptions{3000, 1 << 20, *ctx});
  ASSERT_TRUE(c.request("GET", "/v1/whoami").ok());
  list.write(agent_.serial + "\n");
  auto r = c.request("GET", "/v1/whoami");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("revoked"), std::string::npos) << r.status().message();
}

// An attacker who held a good certificate keeps the session (or ticket) of a handshake made
// before the revocation and tries to resume it afterwards: the agent keeps no sessions, so
// the resumption is a full handshake and the revoked certificate is refused.
TEST_F(TlsHttp, ASessionFromBeforeTheRevocationCannotBeResumedAfterIt) {
  RevokedListFile list;
  start({}, list.path);
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  auto ctx = TlsContext::create(TlsContext::Role::kClient, server_client_.id, "agent-a").value();
  SSL_CTX_set_session_cache_mode(ctx->native().native_handle(), SSL_SESS_CACHE_CLIENT);
  // One exchange; returns the answer ("" on any error) and keeps the session to resume.
  auto exchange = [&](SSL_SESSION* resume, SSL_SESSION** keep) {
    asio::io_context ioc;
    beast::ssl_stream<beast::tcp_stream> s(ioc, ctx->native());
    if (resume) SSL_set_session(s.native_handle(), resume);
    beast::get_lowest_layer(s).expires_after(std::chrono::seconds(5));
    beast::get_lowest_layer(s).connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), http_->port()));
    beast::error_code ec;
    s.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return std::string();
    const std::string req = "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    asio::write(s, asio::buffer(req), ec);
    std::string answer;
    char buf[1024];
    while (!ec) {
      const size_t n = s.read_some(asio::buffer(buf), ec);
      answer.append(buf, n);
    }
    if (keep) *keep = SSL_get1_session(s.native_handle());
    return answer;
  };
  SSL_SESSION* session = nullptr;
  ASSERT_NE(exchange(nullptr, &session).find("ferry-server"), std::string::npos);
  ASSERT_NE(session, nullptr);
  // The agent handed out nothing to resume with (no session id kept, no ticket).
  EXPECT_FALSE(SSL_SESSION_is_resumable(session));
  list.write(server_client_.serial + "\n");
  const std::string answer = exchange(session, nullptr);
  SSL_SESSION_free(session);
  EXPECT_EQ(answer.find("ferry-server"), std::string::npos)
      << "a resumed session skipped the revocation check: " << answer;
}

TEST_F(TlsHttp, AKeptAliveConnectionIsRefusedFromItsNextRequestOnceItsCertificateIsRevoked) {
  RevokedListFile list;
  start({}, list.path);
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  auto ctx = TlsContext::create(TlsContext::Role::kClient, server_client_.id, "agent-a").value();
  asio::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> s(ioc, ctx->native());
  beast::get_lowest_layer(s).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(s).connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), http_->port()));
  beast::error_code ec;
  s.handshake(asio::ssl::stream_base::client, ec);
  ASSERT_FALSE(ec) << ec.message();
  // One request on the kept-alive connection; returns the answer ("" when none came).
  auto ask = [&]() {
    beast::error_code e;
    const std::string req = "GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(s, asio::buffer(req), e);
    if (e) return std::string();
    beast::flat_buffer buf;
    boost::beast::http::response<boost::beast::http::string_body> res;
    boost::beast::http::read(s, buf, res, e);
    return e ? std::string() : res.body();
  };
  ASSERT_NE(ask().find("ferry-server"), std::string::npos);
  ASSERT_NE(ask().find("ferry-server"), std::string::npos);  // the same connection again
  list.write(server_client_.serial + "\n");
  // No new handshake: the connection from before the revocation gets no further answer.
  EXPECT_EQ(ask(), "");
}

TEST_F(TlsHttp, TheClientRefusesAServerOfAnotherNameOrAnotherCa) {
  start();
  // Pinned to agent-b: agent-a's certificate (same CA) is not it.
  auto r = get(server_client_.id, "agent-b");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TLS handshake"), std::string::npos) << r.status().message();
  // A client that trusts only another CA does not accept the server at all.
  TlsIdentity wrong_trust = server_client_.id;
  wrong_trust.ca_pem = other_ca_.cert_pem;
  EXPECT_FALSE(get(wrong_trust).ok());
}

TEST(TlsPki, TheCaNamesTheCertificateWhateverTheCsrAsks) {
  auto ca = make_ca("ca", 1).value();
  auto key = make_private_key().value();
  auto csr = make_csr(key, "admin").value();
  auto cert = sign_csr(ca, csr, "agent-a", 1);
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(cert_common_name(*cert).value(), "agent-a");
  // Garbage and a CSR whose signature does not verify are refused.
  EXPECT_EQ(sign_csr(ca, "not a csr", "x", 1).status().code(), Code::kInvalidArgument);
  std::string tampered = csr;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(sign_csr(ca, tampered, "x", 1).ok());
  // A key that is not the certificate's is refused when the context is made.
  TlsIdentity mismatched{*cert, make_private_key().value(), ca.cert_pem, {}};
  auto ctx = TlsContext::create(TlsContext::Role::kServer, mismatched);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace ferry
